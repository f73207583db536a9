//! The `velocity:` rules of a trunk and of the system, compiled into the
//! trunk's [`VelocityRule`]s (each also a row of the rule table).

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::Builder;
use crate::config::types::VelocityConfig;
use crate::policy::ruleset::{ActionId, RuleKind};
use crate::policy::velocity::{Scope, VelocityRule};

impl Builder<'_> {
    /// The trunk's own velocity rules, then the system-level ones; each is
    /// also a row of the rule table (named in the log and the metrics).
    pub(super) fn velocity_rules(
        &mut self,
        trunk: &str,
        own: &[Spanned<VelocityConfig>],
        blocked_action: ActionId,
    ) -> Vec<VelocityRule> {
        let system: Vec<&Spanned<VelocityConfig>> = self.system_velocity.clone();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let all = own
            .iter()
            .map(|v| (v, false))
            .chain(system.into_iter().map(|v| (v, true)));
        for (v, is_system) in all {
            let c = &v.value;
            let name = c.name.value.trim();
            let what = if is_system {
                format!("velocity rule {name}")
            } else {
                format!("trunk {trunk}: velocity rule {name}")
            };
            if name.is_empty() {
                self.problem(&c.name.referenced, "a velocity rule needs a name");
                continue;
            }
            if !seen.insert(name.to_string()) {
                // A system rule of the same name as the trunk's own: reported once.
                if !is_system {
                    self.problem(
                        &c.name.referenced,
                        format!("trunk {trunk}: duplicate velocity rule name {name:?}"),
                    );
                }
                continue;
            }
            let scope = match &c.scope {
                None => Scope::Caller,
                Some(sc) => match Scope::parse(&sc.value) {
                    Ok(s) => s,
                    Err(e) => {
                        self.problem(&sc.referenced, format!("{what}: {e}"));
                        continue;
                    }
                },
            };
            if c.max == 0 || c.max > 10_000 {
                self.problem(
                    &v.referenced,
                    format!("{what}: max {}: use 1 to 10000", c.max),
                );
                continue;
            }
            if c.per.is_zero() || c.per > std::time::Duration::from_secs(7 * 86_400) {
                self.problem(&v.referenced, format!("{what}: per: use 1s to 7d"));
                continue;
            }
            if c.block_for.is_some_and(|b| b.is_zero()) {
                self.problem(
                    &v.referenced,
                    format!("{what}: block_for: use a duration above 0"),
                );
                continue;
            }
            let action = match &c.action {
                Some(a) => self.action_id(a),
                None => blocked_action,
            };
            let origin = self.origin("velocity", false);
            let rule = self.rules.push(name, 0, action, true, None, origin);
            self.rules.condition_only(rule, RuleKind::Velocity(scope));
            out.push(VelocityRule {
                name: name.into(),
                rule,
                scope,
                max: c.max,
                per: c.per,
                action,
                block_for: c.block_for,
                system: is_system,
            });
        }
        out
    }
}

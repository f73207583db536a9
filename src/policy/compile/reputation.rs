//! Reputation rule conditions (`reputation:`, `category:`, `caller_name:`)
//! and the `reputation.providers` they need, each problem at its place.

use std::collections::HashSet;

use super::Builder;
use crate::config::types::RuleConfig;
use crate::policy::reputation::{NameMatcher, RepCond};

/// Whether a rule has any reputation condition.
pub(super) fn has_reputation(rc: &RuleConfig) -> bool {
    rc.reputation.is_some() || rc.category.is_some() || rc.caller_name.is_some()
}

impl Builder<'_> {
    /// The rule's reputation condition (`Ok(None)`: it has none); `Err`
    /// after reporting a problem.
    pub(super) fn reputation_cond(
        &mut self,
        rc: &RuleConfig,
        name: &str,
    ) -> Result<Option<RepCond>, ()> {
        if !has_reputation(rc) {
            return Ok(None);
        }
        let no_providers = self.cfg.raw.reputation.providers.is_empty();
        let mut cond = RepCond::default();
        let mut ok = true;
        if let Some(s) = &rc.reputation {
            let bad = |v: Option<u8>| v.is_some_and(|v| v > 100);
            if (s.value.above.is_none() && s.value.below.is_none())
                || bad(s.value.above)
                || bad(s.value.below)
            {
                self.problem(
                    &s.referenced,
                    format!("rule {name}: reputation: give `above:` and/or `below:`, 0 to 100"),
                );
                ok = false;
            } else if no_providers {
                self.problem(
                    &s.referenced,
                    format!("rule {name}: reputation: needs `reputation.providers`"),
                );
                ok = false;
            }
            cond.above = s.value.above;
            cond.below = s.value.below;
        }
        if let Some(c) = &rc.category {
            if c.value.is_empty() || c.value.iter().any(|v| v.trim().is_empty()) {
                self.problem(
                    &c.referenced,
                    format!("rule {name}: category: give a list of names, e.g. [fraud]"),
                );
                ok = false;
            } else if no_providers {
                self.problem(
                    &c.referenced,
                    format!("rule {name}: category: needs `reputation.providers`"),
                );
                ok = false;
            }
            cond.categories = c
                .value
                .iter()
                .map(|v| v.trim().to_ascii_lowercase().into())
                .collect();
        }
        if let Some(n) = &rc.caller_name {
            let v = &n.value;
            match NameMatcher::compile(&v.pattern, v.match_type, v.case_insensitive, self.limit) {
                Ok(m) => cond.name = Some(m),
                Err(e) => {
                    self.problem(
                        &n.referenced,
                        format!("rule {name}: caller_name pattern {:?}: {e}", v.pattern),
                    );
                    ok = false;
                }
            }
        }
        if ok { Ok(Some(cond)) } else { Err(()) }
    }

    /// `reputation.providers`: unique names, one source each, a URL with a
    /// scheme, a score scale above zero.
    pub(super) fn check_providers(&mut self) {
        let mut names = HashSet::new();
        for p in &self.cfg.raw.reputation.providers {
            let v = &p.value;
            let name = v.name.trim();
            let mut says = Vec::new();
            if name.is_empty() {
                says.push("a provider needs a `name`".to_string());
            } else if !names.insert(name.to_string()) {
                says.push(format!("duplicate provider name {name:?}"));
            }
            match (&v.url, &v.file) {
                (Some(u), None) => {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        says.push(format!(
                            "provider {name}: url {u:?}: use http:// or https://"
                        ));
                    }
                }
                (None, Some(_)) => {}
                _ => says.push(format!("provider {name}: give one of `url:` or `file:`")),
            }
            if !(v.score_max.is_finite() && v.score_max > 0.0) {
                says.push(format!("provider {name}: score_max must be above 0"));
            }
            if v.max_concurrent == 0 || v.breaker_failures == 0 {
                says.push(format!(
                    "provider {name}: max_concurrent and breaker_failures must be at least 1"
                ));
            }
            for ptr in [&v.score, &v.caller_name, &v.category]
                .into_iter()
                .flatten()
            {
                if !ptr.is_empty() && !ptr.starts_with('/') {
                    says.push(format!(
                        "provider {name}: JSON pointer {ptr:?} must start with '/'"
                    ));
                }
            }
            for s in says {
                self.problem(&p.referenced, s);
            }
        }
    }
}

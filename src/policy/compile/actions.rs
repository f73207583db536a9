//! The named actions: the top-level ones and the built-ins, resolved per PBX.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::{BUILTIN_ACTIONS, Builder};
use crate::action::Plan;
use crate::config::types::{ActionConfig, ActionKind};
use crate::policy::ruleset::{ActionDef, ActionId};

impl Builder<'_> {
    pub(super) fn actions(&mut self) -> Vec<ActionDef> {
        let raw = &self.cfg.raw;
        let mut names: Vec<(String, Option<&Spanned<ActionConfig>>)> = raw
            .actions
            .iter()
            .map(|(n, a)| (n.clone(), Some(a)))
            .collect();
        for (n, _) in BUILTIN_ACTIONS {
            if !raw.actions.contains_key(*n) {
                names.push((n.to_string(), None));
            }
        }
        for (i, (n, _)) in names.iter().enumerate() {
            self.action_ids.insert(n.clone(), i as ActionId);
        }
        // Plans that name no other action first, so a bridge can point at
        // them; challenges last, so `on_pass` may ring a bridge.
        let mut plans: BTreeMap<String, [Arc<Plan>; 2]> = BTreeMap::new();
        for round in [0, 1, 2] {
            for (name, cfg) in &names {
                let r = match cfg.map(|c| c.value.kind) {
                    Some(ActionKind::WhisperBridge) => 1,
                    Some(ActionKind::Challenge) => 2,
                    _ => 0,
                };
                if r != round {
                    continue;
                }
                let p = match cfg {
                    Some(c) => self.resolve_action(name, c, &plans),
                    None => crate::action::builtin_plans(name),
                };
                plans.insert(name.clone(), p);
            }
        }
        names
            .into_iter()
            .map(|(name, cfg)| ActionDef {
                kind: cfg.map_or_else(
                    || {
                        BUILTIN_ACTIONS
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map(|(_, k)| *k)
                            .unwrap_or(ActionKind::Continue)
                    },
                    |c| c.value.kind,
                ),
                plans: plans
                    .remove(&name)
                    .unwrap_or_else(|| crate::action::builtin_plans("pass")),
                edge: crate::action::edge_step(cfg.map(|c| &c.value), &name),
                name: name.into(),
            })
            .collect()
    }

    /// Resolves one named action, reporting its problems at its place.
    pub(super) fn resolve_action(
        &mut self,
        name: &str,
        a: &Spanned<ActionConfig>,
        done: &BTreeMap<String, [Arc<Plan>; 2]>,
    ) -> [Arc<Plan>; 2] {
        let (plans, errs) = crate::action::resolve(name, &a.value, done);
        for e in errs {
            self.problem(&a.referenced, format!("action {name}: {e}"));
        }
        plans
    }
}

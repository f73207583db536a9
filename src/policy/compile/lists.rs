//! Rules into list indexes: inline YAML rules (`rules_into`) and the rows
//! of bulk list files (`list_files_into`), each problem at its place.

use std::collections::HashSet;

use serde_saphyr::Spanned;

use super::Builder;
use super::reputation::has_reputation;
use crate::config::Problem;
use crate::config::types::{ListRole, MatchType, RuleConfig};
use crate::policy::attest::Attest;
use crate::policy::index::ListIndexBuilder;
use crate::policy::pattern;
use crate::policy::ruleset::{ListInfo, NO_ACTION, RuleKind};

impl Builder<'_> {
    /// Compiles inline YAML rules into a list.
    pub(super) fn rules_into(
        &mut self,
        list: &mut ListIndexBuilder,
        rules: &[Spanned<RuleConfig>],
        list_name: &str,
    ) {
        let origin = self.origin(list_name, false);
        let mut seen = HashSet::new();
        for r in rules {
            let rc = &r.value;
            let name = rc.name.value.trim();
            if name.is_empty() {
                self.problem(&rc.name.referenced, "a rule needs a name");
            } else if !seen.insert(name.to_string()) {
                self.problem(
                    &rc.name.referenced,
                    format!("{list_name}: duplicate rule name {name:?}"),
                );
            }
            let compiled = match &rc.pattern {
                Some(p) => match pattern::compile(&p.value, rc.match_type, rc.case_insensitive) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        let col = p.referenced.column() + e.column.map_or(0, |c| c as u64);
                        self.problems.push(Problem::new(
                            self.file,
                            p.referenced.line(),
                            col,
                            format!("rule {name}: pattern {:?}: {e}", p.value),
                        ));
                        continue;
                    }
                },
                None if rc.anonymous || rc.attestation.is_some() || has_reputation(rc) => None,
                None => {
                    self.problem(
                        &r.referenced,
                        format!(
                            "rule {name}: needs `pattern:`, `anonymous: true` or `attestation:` (or `reputation:`, `category:`, `caller_name:`)"
                        ),
                    );
                    continue;
                }
            };
            let attest = match &rc.attestation {
                None => None,
                Some(a) => {
                    let mut mask = 0u8;
                    let mut bad = Vec::new();
                    for v in &a.value {
                        match Attest::parse(v) {
                            Some(l) => mask |= l.bit(),
                            None => bad.push(v.as_str()),
                        }
                    }
                    if !bad.is_empty() || a.value.is_empty() {
                        self.problem(
                            &a.referenced,
                            format!(
                                "rule {name}: attestation {:?}: use a list of A, B, C, none, failed",
                                if bad.is_empty() { a.value.join(", ") } else { bad.join(", ") }
                            ),
                        );
                        continue;
                    }
                    Some(mask)
                }
            };
            let Ok(rep) = self.reputation_cond(rc, name) else {
                continue;
            };
            let action = match &rc.action {
                Some(a) => self.action_id(a),
                None => NO_ACTION,
            };
            let priority = i32::try_from(rc.priority).unwrap_or(if rc.priority < 0 {
                i32::MIN
            } else {
                i32::MAX
            });
            let id = self.rules.push(
                name,
                priority,
                action,
                rc.enabled,
                compiled.as_ref(),
                origin,
            );
            if let Some(s) = &rc.schedule
                && let Some(c) = self.schedule_cond(s, &r.referenced, &format!("rule {name}"))
            {
                self.rules.schedule.insert(id, c);
            }
            if let Some(mask) = attest {
                self.rules.attest.insert(id, mask);
                self.attest_rules += 1;
                if compiled.is_none() && !rc.anonymous {
                    self.rules.condition_only(id, RuleKind::Attestation(mask));
                    list.add_always(id);
                }
            }
            if let Some(cond) = rep {
                if compiled.is_none() && !rc.anonymous && attest.is_none() {
                    self.rules.condition_only(id, RuleKind::Reputation);
                    list.add_always(id);
                }
                self.rules.reputation.insert(id, cond);
            }
            if rc.anonymous {
                list.add_anonymous(id);
            }
            if let Some(c) = &compiled {
                list.add(id, c, priority);
            }
        }
    }

    /// Adds the rows of every bulk list file of `trunk` (or of `user`) with
    /// `role`, in the tenant being compiled.
    pub(super) fn list_files_into(
        &mut self,
        list: &mut ListIndexBuilder,
        (trunk, user): (Option<&str>, Option<&str>),
        role: ListRole,
        infos: &mut Vec<ListInfo>,
    ) {
        let cfg = self.cfg;
        let tenant = self.tenant.clone();
        for lf in cfg.lists.iter().filter(|l| {
            l.trunk.as_deref() == trunk
                && l.user.as_deref() == user
                && l.tenant == tenant
                && l.role == role
        }) {
            if !self.list_names.insert(lf.name.clone()) {
                self.problems.push(Problem::new(
                    self.file,
                    0,
                    0,
                    format!("two lists are named {:?}: give one a `name:`", lf.name),
                ));
            }
            let origin = self.origin(&lf.name, true);
            let file = lf.path.display().to_string();
            let default_action = lf.default_action.as_ref().map(|a| self.action_id(a));
            let mut seen = HashSet::new();
            for (line, row) in &lf.rows {
                let at = |msg: String| Problem::new(&file, u64::from(*line), 0, msg);
                if !seen.insert(row.rule_name.as_str()) {
                    self.problems
                        .push(at(format!("duplicate rule name {:?}", row.rule_name)));
                    continue;
                }
                let mt = match row.match_type.trim() {
                    "" => None,
                    m => match MatchType::parse(m) {
                        Some(m) => Some(m),
                        None => {
                            self.problems.push(at(format!("unknown match_type {m:?}")));
                            continue;
                        }
                    },
                };
                let compiled = match pattern::compile(&row.pattern, mt, false) {
                    Ok(c) => c,
                    Err(e) => {
                        self.problems.push(at(format!(
                            "rule {}: pattern {:?}: {e}",
                            row.rule_name, row.pattern
                        )));
                        continue;
                    }
                };
                let action = match row.action.trim() {
                    // "allow" / "block" in a file mean "what this list does".
                    "" | "allow" | "block" => default_action.unwrap_or(NO_ACTION),
                    a => match self.action_ids.get(a) {
                        Some(&id) => id,
                        None => {
                            self.problems
                                .push(at(format!("rule {}: no action named {a:?}", row.rule_name)));
                            continue;
                        }
                    },
                };
                let id = self.rules.push(
                    &row.rule_name,
                    0,
                    action,
                    row.enabled,
                    Some(&compiled),
                    origin,
                );
                list.add(id, &compiled, 0);
            }
            infos.push(ListInfo {
                name: lf.name.clone(),
                kind: match (trunk, user, &tenant, role) {
                    (_, Some(_), _, ListRole::Whitelist) => "user_allow",
                    (_, Some(_), _, ListRole::Blacklist) => "user_block",
                    (None, None, None, _) => "system_blacklist",
                    (_, _, _, ListRole::Whitelist) => "whitelist",
                    (_, _, _, ListRole::Blacklist) => "blacklist",
                },
                trunk: trunk.map(str::to_string),
                tenant: tenant.clone(),
                user: user.map(str::to_string),
                path: Some(lf.path.clone()),
                rules: lf.rows.len(),
            });
        }
    }
}

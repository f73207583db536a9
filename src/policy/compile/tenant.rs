//! Tenants and users: each named tenant compiled into the one rule set (its
//! trunks named `TENANT.TRUNK`, its actions and schedules visible only to
//! it), the users of every tenant, and the isolation of a broken tenant.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::{Builder, Trunks};
use crate::config::types::{ListRole, TenantConfig, UserConfig};
use crate::config::{LoadedConfig, Problem, Problems};
use crate::policy::index::ListIndexBuilder;
use crate::policy::number::Region;
use crate::policy::ruleset::{
    ActionDef, ActionId, ListInfo, RuleSet, Tenant, TenantId, TenantInputs, Trunk, User, UserId,
    did_key,
};
use crate::policy::schedule::Schedule;

/// A tenant's problems, each saying the tenant.
pub(super) fn named(problems: Vec<(String, Problem)>) -> Vec<Problem> {
    problems
        .into_iter()
        .map(|(t, mut p)| {
            p.message = format!("tenant {t}: {}", p.message);
            p
        })
        .collect()
}

/// A tenant name: letters, digits, `-` and `_` (it prefixes list and trunk
/// names with a `.`), and not `default` (the top level's name).
fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name != "default"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

type Users = (Vec<User>, HashMap<String, UserId>);

impl<'a> Builder<'a> {
    /// The users of the tenant being compiled: each one's allow and block
    /// list files, and the extension and DIDs that select them.
    pub(super) fn users(&mut self, users: &'a BTreeMap<String, Spanned<UserConfig>>) -> Users {
        let mut out = Vec::new();
        let mut by_key = HashMap::new();
        let prefix = self
            .tenant
            .as_ref()
            .map_or_else(String::new, |t| format!("{t}."));
        for (ext, u) in users {
            let id = out.len();
            let ext_key = ext.trim();
            if ext_key.is_empty() || ext_key.contains(['.', '/']) {
                self.problem(
                    &u.referenced,
                    format!("user {ext:?}: an extension is digits or a name without `.` or `/`"),
                );
                continue;
            }
            by_key.insert(ext_key.to_string(), id);
            for did in &u.value.dids {
                let key = did_key(did);
                if key.is_empty() || key == "+" {
                    self.problem(
                        &u.referenced,
                        format!("user {ext}: DID {did:?} has no digits"),
                    );
                } else if let Some(prev) = by_key.insert(key, id)
                    && prev != id
                {
                    self.problem(
                        &u.referenced,
                        format!("user {ext}: DID {did:?} already selects another user"),
                    );
                }
            }
            let mut allow = ListIndexBuilder::default();
            let mut block = ListIndexBuilder::default();
            let mut lists = std::mem::take(&mut self.lists);
            self.list_files_into(
                &mut allow,
                (None, Some(ext)),
                ListRole::Whitelist,
                &mut lists,
            );
            self.list_files_into(
                &mut block,
                (None, Some(ext)),
                ListRole::Blacklist,
                &mut lists,
            );
            self.lists = lists;
            out.push(User {
                ext: ext_key.into(),
                allow: self.index(allow, &format!("{prefix}user.{ext}.allow")),
                block: self.index(block, &format!("{prefix}user.{ext}.block")),
            });
        }
        (out, by_key)
    }

    /// One named tenant: its schedules and actions (seen only by it), its
    /// tenant-wide lists, users and trunks. Its trunks go onto `trunk_list`.
    pub(super) fn tenant(
        &mut self,
        (name, id, t): (&'a str, TenantId, &'a Spanned<TenantConfig>),
        trunk_list: &mut Vec<Trunk>,
        (actions, schedules): (&mut Vec<ActionDef>, &mut Vec<(String, Schedule)>),
        (default_region, system_blocked_action): (Region, ActionId),
    ) -> Tenant {
        let tc = &t.value;
        if !valid_tenant_name(name) {
            self.problem(
                &t.referenced,
                format!(
                    "tenant {name:?}: a tenant's name is letters, digits, `-` and `_`, and not `default`"
                ),
            );
        }
        let saved_actions = self.action_ids.clone();
        let saved_schedules = self.schedule_ids.clone();
        let saved_attest = self.system_attest;
        self.tenant = Some(name.to_string());
        self.schedules_into(&tc.schedules, schedules);
        self.tenant_actions(tc, actions);
        let region = match &tc.region {
            None => default_region,
            Some(r) => Region::parse(&r.value).unwrap_or_else(|| {
                self.problem(&r.referenced, format!("unknown region {:?}", r.value));
                default_region
            }),
        };
        let blocked = self.action_or(&tc.blocked_action, system_blocked_action);
        let attest_before = self.attest_rules;
        let mut wl = ListIndexBuilder::default();
        let mut bl = ListIndexBuilder::default();
        self.rules_into(&mut wl, &tc.whitelist, &format!("{name}.whitelist"));
        self.rules_into(&mut bl, &tc.blacklist, &format!("{name}.blacklist"));
        for (kind, count) in [
            ("whitelist", tc.whitelist.len()),
            ("blacklist", tc.blacklist.len()),
        ] {
            self.lists.push(ListInfo {
                name: format!("{name}.{kind}"),
                kind,
                trunk: None,
                tenant: Some(name.to_string()),
                user: None,
                path: None,
                rules: count,
            });
        }
        let mut lists = std::mem::take(&mut self.lists);
        self.list_files_into(&mut wl, (None, None), ListRole::Whitelist, &mut lists);
        self.list_files_into(&mut bl, (None, None), ListRole::Blacklist, &mut lists);
        self.lists = lists;
        let (users, user_by_key) = self.users(&tc.users);
        self.system_attest = saved_attest || self.attest_rules > attest_before;
        let mut trunks = Trunks {
            base: trunk_list.len(),
            ..Trunks::default()
        };
        if tc.trunks.is_empty() {
            let qualified = format!("{name}.default");
            let dialing = self.dialing(region);
            let velocity = self.velocity_rules(&qualified, &[], blocked);
            let pass = self.builtin("pass");
            trunks.by_name.insert("default".into(), trunks.base);
            trunks.list.push(Trunk {
                tenant: id,
                name: qualified.into(),
                dialing,
                whitelist: Default::default(),
                blacklist: Default::default(),
                exclusive: crate::policy::ruleset::Exclusive::Never,
                blocked_action: blocked,
                allowed_action: pass,
                needs_attestation: self.system_attest,
                velocity: crate::policy::velocity::TrunkVelocity {
                    rules: velocity,
                    trusted_action: pass,
                },
            });
        }
        for (tname, tcfg) in &tc.trunks {
            let qualified = format!("{name}.{tname}");
            let mut trunk = self.trunk(&qualified, tcfg, &mut trunks, region, blocked);
            trunk.tenant = id;
            trunks
                .by_name
                .insert(tname.clone(), trunks.base + trunks.list.len());
            trunks.list.push(trunk);
        }
        let default_trunk = match &tc.default_trunk {
            Some(d) => match trunks.by_name.get(d.value.trim()) {
                Some(&tid) => Some(tid),
                None => {
                    self.problem(
                        &d.referenced,
                        format!("default_trunk: no trunk named {:?}", d.value),
                    );
                    None
                }
            },
            None if trunks.list.len() == 1 => Some(trunks.base),
            None => None,
        };
        let whitelist = self.index(wl, &format!("{name}.whitelist"));
        let blacklist = self.index(bl, &format!("{name}.blacklist"));
        trunk_list.append(&mut trunks.list);
        self.system_attest = saved_attest;
        self.action_ids = saved_actions;
        self.schedule_ids = saved_schedules;
        self.tenant = None;
        Tenant {
            name: name.into(),
            whitelist,
            blacklist,
            users,
            user_by_key,
            trunk_by_name: trunks.by_name,
            trunk_by_did: trunks.by_did,
            default_trunk,
        }
    }

    /// The tenant's own actions, resolved with the top-level ones visible
    /// (a bridge may ring a top-level action); appended to `actions`.
    fn tenant_actions(&mut self, tc: &'a TenantConfig, actions: &mut Vec<ActionDef>) {
        use crate::config::types::ActionKind;
        let mut plans = self.root_plans.clone();
        for round in [0, 1, 2] {
            for (name, cfg) in &tc.actions {
                let r = match cfg.value.kind {
                    ActionKind::WhisperBridge => 1,
                    ActionKind::Challenge => 2,
                    _ => 0,
                };
                if r == round {
                    let p = self.resolve_action(name, cfg, &plans);
                    plans.insert(name.clone(), p);
                }
            }
        }
        for (name, cfg) in &tc.actions {
            let Ok(id) = ActionId::try_from(actions.len()) else {
                self.problem(&cfg.referenced, "too many actions");
                return;
            };
            let Some(p) = plans.remove(name) else {
                continue;
            };
            actions.push(ActionDef {
                name: name.as_str().into(),
                kind: cfg.value.kind,
                plans: p,
                edge: crate::action::edge_step(Some(&cfg.value), name),
            });
            self.action_ids.insert(name.clone(), id);
        }
    }
}

impl RuleSet {
    /// Compiles a configuration so that one tenant's problems never stop
    /// the others: a tenant with problems is compiled from its last good
    /// version in `previous` (the running rule set), or, with none, without
    /// its lists, trunks' rules and actions (its calls still meet the
    /// protected numbers and the system blacklist). Problems outside the
    /// tenants refuse the whole configuration, as before. What each tenant
    /// was kept at is in [`RuleSet::tenant_problems`].
    pub fn compile_isolated(
        cfg: &LoadedConfig,
        previous: Option<&RuleSet>,
    ) -> Result<RuleSet, Problems> {
        let (rs, problems) = Builder::new(cfg).build()?;
        if problems.is_empty() {
            return Ok(with_inputs(rs, cfg, &HashSet::new()));
        }
        let mut bad: Vec<String> = problems.iter().map(|(t, _)| t.clone()).collect();
        bad.dedup();
        let mut cfg = cfg.clone();
        let mut emptied = HashSet::new();
        let mut notes = Vec::new();
        for t in &bad {
            let kept = previous.and_then(|p| p.tenant_inputs.get(t));
            substitute(&mut cfg, t, kept);
            if kept.is_none() {
                emptied.insert(t.clone());
            }
            let how = if kept.is_some() {
                "its last good version stays in force"
            } else {
                "it is screened without its own rules until fixed"
            };
            notes.extend(
                problems
                    .iter()
                    .filter(|(n, _)| n == t)
                    .map(|(_, p)| format!("tenant {t}: {p} ({how})")),
            );
        }
        let (rs, again) = match Builder::new(&cfg).build()? {
            (rs, again) if again.is_empty() => (rs, again),
            // A last good version can break with the file around it (an action
            // it used is gone): that tenant is emptied too.
            (_, again) => {
                for (t, p) in &again {
                    substitute(&mut cfg, t, None);
                    emptied.insert(t.clone());
                    notes.push(format!(
                        "tenant {t}: {p} (it is screened without its own rules until fixed)"
                    ));
                }
                Builder::new(&cfg).build()?
            }
        };
        if !again.is_empty() {
            return Err(Problems(named(again)));
        }
        let mut rs = with_inputs(rs, &cfg, &emptied);
        rs.tenant_problems = notes;
        Ok(rs)
    }
}

/// Replaces tenant `t` of `cfg` with `kept`, or with an empty tenant of the
/// same domains.
fn substitute(cfg: &mut LoadedConfig, t: &str, kept: Option<&TenantInputs>) {
    cfg.lists.retain(|l| l.tenant.as_deref() != Some(t));
    cfg.tenant_problems.retain(|(n, _)| n != t);
    let Some(current) = cfg.raw.tenants.get_mut(t) else {
        return;
    };
    match kept {
        Some(k) => {
            *current = k.config.clone();
            cfg.lists.extend(k.lists.iter().cloned());
        }
        None => {
            current.value = TenantConfig {
                domains: current.value.domains.clone(),
                ..TenantConfig::default()
            };
        }
    }
}

/// Records what each tenant compiled from, except the emptied ones.
fn with_inputs(mut rs: RuleSet, cfg: &LoadedConfig, emptied: &HashSet<String>) -> RuleSet {
    if cfg.raw.tenants.is_empty() {
        return rs;
    }
    let inputs: BTreeMap<String, TenantInputs> = cfg
        .raw
        .tenants
        .iter()
        .filter(|(n, _)| !emptied.contains(*n))
        .map(|(n, t)| {
            let lists = cfg
                .lists
                .iter()
                .filter(|l| l.tenant.as_deref() == Some(n))
                .cloned()
                .collect();
            (
                n.clone(),
                TenantInputs {
                    config: t.clone(),
                    lists,
                },
            )
        })
        .collect();
    rs.tenant_inputs = Arc::new(inputs);
    rs
}

impl RuleSet {
    /// Checks a configuration for a change to one list of `tenant` (`None`:
    /// the default tenant's or the system's): the problems of the rest of
    /// the file and of that tenant refuse it; another tenant's do not (that
    /// tenant is kept at its last good version by the reload).
    pub fn check_for_tenant(cfg: &LoadedConfig, tenant: Option<&str>) -> Result<(), Problems> {
        RuleSet::check_and_build(cfg, tenant).map(|_| ())
    }

    /// [`RuleSet::check_for_tenant`], also giving the rule set when the
    /// whole configuration compiles without a problem: what
    /// [`RuleSet::compile_isolated`] would install from it, so a list write
    /// that checked it hands it to the reload rather than compiling twice.
    pub(crate) fn check_and_build(
        cfg: &LoadedConfig,
        tenant: Option<&str>,
    ) -> Result<Option<RuleSet>, Problems> {
        let (rs, problems) = Builder::new(cfg).build()?;
        if problems.is_empty() {
            return Ok(Some(with_inputs(rs, cfg, &HashSet::new())));
        }
        let mine: Vec<(String, Problem)> = problems
            .into_iter()
            .filter(|(t, _)| Some(t.as_str()) == tenant)
            .collect();
        if mine.is_empty() {
            Ok(None)
        } else {
            Err(Problems(named(mine)))
        }
    }
}

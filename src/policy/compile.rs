//! Compiling a loaded configuration into a [`RuleSet`]: one method per
//! section (protected numbers, the system blacklist, each trunk, the default
//! trunk), every list indexed, every action resolved per PBX, every
//! reference checked. Runs off the call path, at start and on reload.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::index::{ListIndex, ListIndexBuilder};
use super::number::{Dialing, Region};
use super::pattern;
use super::ruleset::{
    ActionId, Exclusive, ListInfo, NO_ACTION, Origin, RuleSet, RuleTable, ScheduleCond, Tenant,
    TenantId, Trunk, TrunkId, did_key,
};
use super::schedule::Schedule;
use super::velocity::TrunkVelocity;
use crate::action::Plan;
use crate::config::types::{
    ActionKind, ListRole, ScheduleRef, TrunkConfig, VelocityConfig, WhitelistMode,
};
use crate::config::{LoadedConfig, Problem, Problems};

mod actions;
mod lists;
mod reputation;
mod tenant;
mod velocity;

impl RuleSet {
    /// Compiles a loaded configuration, or reports every problem in it, a
    /// tenant's with the tenant's name. (Here rather than in `ruleset`, so
    /// that the rule set's types do not import their compiler.)
    pub fn compile(cfg: &LoadedConfig) -> Result<RuleSet, Problems> {
        let (rs, tenant_problems) = Builder::new(cfg).build()?;
        if tenant_problems.is_empty() {
            Ok(rs)
        } else {
            Err(Problems(tenant::named(tenant_problems)))
        }
    }
}

/// Compiles one loaded configuration, collecting every problem instead of
/// stopping at the first, so `callguard check` can report them all.
pub(super) struct Builder<'a> {
    cfg: &'a LoadedConfig,
    /// `policy.regex_backtrack_limit`, for every index.
    limit: usize,
    /// What `GET /api/v1/lists` and the metrics say of each list.
    lists: Vec<ListInfo>,
    file: &'a str,
    problems: Vec<Problem>,
    rules: RuleTable,
    action_ids: HashMap<String, ActionId>,
    schedule_ids: HashMap<String, usize>,
    list_names: HashSet<String>,
    dialing: HashMap<Region, Arc<Dialing>>,
    /// Rules with an `attestation:` condition compiled so far.
    attest_rules: usize,
    /// The protected list or system blacklist has such a rule.
    system_attest: bool,
    /// `velocity:` rules at the top of the file, for every trunk.
    system_velocity: Vec<VelocityConfigRef<'a>>,
    /// The tenant being compiled (`None`: the default one).
    tenant: Option<String>,
    /// The plans of the top-level actions, which every tenant sees.
    root_plans: BTreeMap<String, [Arc<Plan>; 2]>,
    /// Problems of each named tenant (compiled last, one after the other).
    tenant_problems: Vec<(String, Problem)>,
}

/// A system-level velocity rule, compiled per trunk (its default action is
/// the trunk's blocked action).
type VelocityConfigRef<'a> = &'a Spanned<VelocityConfig>;

/// The trunks being built, with their lookups (of one tenant; `base` is
/// the id of its first trunk in the rule set).
#[derive(Default)]
struct Trunks {
    base: usize,
    list: Vec<Trunk>,
    by_name: HashMap<String, TrunkId>,
    by_did: HashMap<String, TrunkId>,
}

const BUILTIN_ACTIONS: &[(&str, ActionKind)] = &[
    ("reject", ActionKind::Reject),
    ("pass", ActionKind::Continue),
    ("allow", ActionKind::Continue),
];

impl<'a> Builder<'a> {
    pub(super) fn new(cfg: &'a LoadedConfig) -> Self {
        Builder {
            cfg,
            limit: cfg.raw.policy.regex_backtrack_limit,
            lists: Vec::new(),
            file: &cfg.file,
            problems: cfg.problems.clone(),
            rules: RuleTable::default(),
            action_ids: HashMap::new(),
            schedule_ids: HashMap::new(),
            list_names: HashSet::new(),
            dialing: HashMap::new(),
            attest_rules: 0,
            system_attest: false,
            system_velocity: Vec::new(),
            tenant: None,
            root_plans: BTreeMap::new(),
            tenant_problems: Vec::new(),
        }
    }

    /// The compiled dialling rules of `region`, built once per rule set.
    fn dialing(&mut self, region: Region) -> Arc<Dialing> {
        if let Some(d) = self.dialing.get(&region) {
            return d.clone();
        }
        let d = match Dialing::new(region) {
            Ok(d) => d,
            Err(e) => {
                self.problems.push(Problem::new(self.file, 0, 0, e));
                Dialing::plus_only(region)
            }
        };
        let d = Arc::new(d);
        self.dialing.insert(region, d.clone());
        d
    }

    fn problem(&mut self, loc: &Location, msg: impl Into<String>) {
        self.problems.push(Problem::at(self.file, loc, msg));
    }

    /// The rule set and the problems of each named tenant; `Err` holds the
    /// problems of the rest of the file.
    #[allow(clippy::type_complexity)]
    pub(super) fn build(mut self) -> Result<(RuleSet, Vec<(String, Problem)>), Problems> {
        let raw = &self.cfg.raw;
        let default_region = self.default_region();
        let mut schedules = self.schedules();
        let mut actions = self.actions();
        self.root_plans = actions
            .iter()
            .map(|a| (a.name.to_string(), a.plans.clone()))
            .collect();
        self.check_providers();
        let system_blocked_action = self.action_or(&raw.blocked_action, self.builtin("reject"));
        let protected = self.protected();
        let system = self.system_blacklist();
        self.system_attest = self.attest_rules > 0;
        self.system_velocity = raw.velocity.iter().collect();
        let attest_before = self.attest_rules;
        let (users, user_by_key) = self.users(&raw.users);
        let users_attest = self.attest_rules > attest_before;
        let system_attest = self.system_attest;
        self.system_attest = system_attest || users_attest;
        let mut trunks = self.trunks(default_region, system_blocked_action);
        self.system_attest = system_attest;
        let default_trunk = self.default_trunk(&trunks);
        let protected = self.index(protected, "protected");
        let system = self.index(system, "system blacklist");
        let mut tenants = vec![Tenant {
            name: "default".into(),
            users,
            user_by_key,
            default_trunk,
            ..Tenant::default()
        }];
        let mut tenant_by_name = HashMap::new();
        let mut tenant_by_domain: HashMap<String, TenantId> = HashMap::new();
        let mut trunk_list = std::mem::take(&mut trunks.list);
        if !self.problems.is_empty() {
            // A system-level velocity rule is compiled for every trunk: its
            // problem is said once.
            let mut seen = HashSet::new();
            self.problems.retain(|p| seen.insert(p.to_string()));
            return Err(Problems(self.problems));
        }
        for (name, t) in &raw.tenants {
            let id = tenants.len();
            let before = self.problems.len();
            let tenant = self.tenant(
                (name, id, t),
                &mut trunk_list,
                (&mut actions, &mut schedules),
                (default_region, system_blocked_action),
            );
            for d in &t.value.domains {
                let d = d.trim().to_ascii_lowercase();
                if let Some(prev) = tenant_by_domain.insert(d.clone(), id) {
                    let prev: &Tenant = &tenants[prev];
                    self.problem(
                        &t.referenced,
                        format!("domain {d:?} is already tenant {}'s", prev.name),
                    );
                }
            }
            for (tname, &tid) in &tenant.trunk_by_name {
                trunks.by_name.insert(format!("{name}.{tname}"), tid);
            }
            let mut seen = HashSet::new();
            let mine: Vec<Problem> = self.problems.drain(before..).collect();
            let listed = self.cfg.tenant_problems.iter().filter(|(n, _)| n == name);
            for p in listed.map(|(_, p)| p.clone()).chain(mine) {
                if seen.insert(p.to_string()) {
                    self.tenant_problems.push((name.clone(), p));
                }
            }
            tenant_by_name.insert(name.clone(), id);
            tenants.push(tenant);
        }
        let rs = RuleSet {
            rules: self.rules,
            actions,
            schedules,
            protected,
            system,
            trunks: trunk_list,
            trunk_by_name: trunks.by_name,
            trunk_by_did: trunks.by_did,
            default_trunk,
            fail: raw.fail,
            system_blocked_action,
            lists: self.lists,
            backtrack_limit: self.limit,
            tenants,
            tenant_by_name,
            tenant_by_domain,
            tenant_inputs: Default::default(),
            tenant_problems: Vec::new(),
        };
        Ok((rs, self.tenant_problems))
    }

    /// `normalize.default_region`, with its dialling rules made ready
    /// before any call whether or not a trunk uses it.
    fn default_region(&mut self) -> Region {
        let raw = &self.cfg.raw;
        let region = match Region::parse(&raw.normalize.default_region) {
            Some(r) => r,
            None => {
                self.problems.push(Problem::new(
                    self.file,
                    0,
                    0,
                    format!(
                        "normalize.default_region: unknown region {:?} (an ISO country code such as US, NL)",
                        raw.normalize.default_region
                    ),
                ));
                Region::default()
            }
        };
        self.dialing(region);
        region
    }

    fn builtin(&self, name: &str) -> ActionId {
        self.action_ids[name]
    }

    /// The action a config key names, or `fallback` when it names none.
    fn action_or(&mut self, r: &Option<Spanned<String>>, fallback: ActionId) -> ActionId {
        match r {
            None => fallback,
            Some(s) => self.action_id(s),
        }
    }

    /// Protected numbers: rules of their own, never blocked.
    fn protected(&mut self) -> ListIndexBuilder {
        let raw = &self.cfg.raw;
        let mut protected = ListIndexBuilder::default();
        let origin = self.origin("protected", false);
        for p in &raw.protected {
            match pattern::compile(&p.value, None, false) {
                Ok(c) => {
                    let id = self
                        .rules
                        .push(&p.value, 0, NO_ACTION, true, Some(&c), origin);
                    protected.add(id, &c, 0);
                }
                Err(e) => self.problem(&p.referenced, format!("protected {:?}: {e}", p.value)),
            }
        }
        self.lists.push(ListInfo {
            name: "protected".into(),
            kind: "protected",
            trunk: None,
            tenant: None,
            user: None,
            path: None,
            rules: raw.protected.len(),
        });
        protected
    }

    /// The system blacklist: inline rules, then its list files.
    fn system_blacklist(&mut self) -> ListIndexBuilder {
        let raw = &self.cfg.raw;
        let mut system = ListIndexBuilder::default();
        self.rules_into(&mut system, &raw.blacklist, "system_blacklist");
        self.lists.push(ListInfo {
            name: "system_blacklist".into(),
            kind: "system_blacklist",
            trunk: None,
            tenant: None,
            user: None,
            path: None,
            rules: raw.blacklist.len(),
        });
        let mut lists = std::mem::take(&mut self.lists);
        self.list_files_into(&mut system, (None, None), ListRole::Blacklist, &mut lists);
        self.lists = lists;
        system
    }

    /// Every configured trunk, or one implicit trunk when none is: a config
    /// holding only a system blacklist still screens calls.
    fn trunks(&mut self, default_region: Region, system_blocked_action: ActionId) -> Trunks {
        let raw = &self.cfg.raw;
        let mut trunks = Trunks::default();
        if raw.trunks.is_empty() {
            let dialing = self.dialing(default_region);
            trunks.by_name.insert("default".to_string(), trunks.base);
            trunks.list.push(Trunk {
                tenant: 0,
                name: "default".into(),
                dialing,
                whitelist: ListIndex::default(),
                blacklist: ListIndex::default(),
                exclusive: Exclusive::Never,
                blocked_action: system_blocked_action,
                allowed_action: self.builtin("pass"),
                needs_attestation: self.system_attest,
                velocity: TrunkVelocity {
                    rules: Vec::new(),
                    trusted_action: self.builtin("pass"),
                },
            });
            let velocity = self.velocity_rules("default", &[], system_blocked_action);
            trunks.list[0].velocity.rules = velocity;
            return trunks;
        }
        for (name, t) in &raw.trunks {
            let trunk = self.trunk(name, t, &mut trunks, default_region, system_blocked_action);
            trunks
                .by_name
                .insert(name.clone(), trunks.base + trunks.list.len());
            trunks.list.push(trunk);
        }
        trunks
    }

    /// One trunk: its region, DIDs, lists, exclusive mode and actions.
    fn trunk(
        &mut self,
        name: &str,
        t: &Spanned<TrunkConfig>,
        trunks: &mut Trunks,
        default_region: Region,
        system_blocked_action: ActionId,
    ) -> Trunk {
        let tc = &t.value;
        let id = trunks.base + trunks.list.len();
        let region = match &tc.region {
            None => default_region,
            Some(r) => Region::parse(&r.value).unwrap_or_else(|| {
                self.problem(
                    &r.referenced,
                    format!("trunk {name}: unknown region {:?}", r.value),
                );
                default_region
            }),
        };
        for did in &tc.dids {
            let key = did_key(did);
            if key.is_empty() || key == "+" {
                self.problem(
                    &t.referenced,
                    format!("trunk {name}: DID {did:?} has no digits"),
                );
            } else if let Some(prev) = trunks.by_did.insert(key, id) {
                let prev_name = trunks
                    .list
                    .get(prev - trunks.base)
                    .map_or(name.to_string(), |t: &Trunk| t.name.to_string());
                self.problem(
                    &t.referenced,
                    format!("trunk {name}: DID {did:?} already selects trunk {prev_name}"),
                );
            }
        }
        let mut wl = ListIndexBuilder::default();
        let mut bl = ListIndexBuilder::default();
        let attest_before = self.attest_rules;
        self.rules_into(&mut wl, &tc.whitelist, &format!("{name}.whitelist"));
        self.rules_into(&mut bl, &tc.blacklist, &format!("{name}.blacklist"));
        let needs_attestation = self.system_attest || self.attest_rules > attest_before;
        for (kind, count) in [
            ("whitelist", tc.whitelist.len()),
            ("blacklist", tc.blacklist.len()),
        ] {
            self.lists.push(ListInfo {
                name: format!("{name}.{kind}"),
                kind,
                trunk: Some(name.to_string()),
                tenant: self.tenant.clone(),
                user: None,
                path: None,
                rules: count,
            });
        }
        let mut lists = std::mem::take(&mut self.lists);
        self.list_files_into(&mut wl, (Some(name), None), ListRole::Whitelist, &mut lists);
        self.list_files_into(&mut bl, (Some(name), None), ListRole::Blacklist, &mut lists);
        self.lists = lists;
        let exclusive = match (&tc.exclusive, tc.whitelist_mode) {
            (Some(r), _) => match self.schedule_cond(r, &t.referenced, name) {
                Some(c) => Exclusive::When(c),
                None => Exclusive::Never,
            },
            (None, WhitelistMode::Exclusive) => Exclusive::Always,
            (None, WhitelistMode::Additive) => Exclusive::Never,
        };
        let blocked_action = self.action_or(&tc.blocked_action, system_blocked_action);
        let pass = self.builtin("pass");
        let allowed_action = self.action_or(&tc.allowed_action, pass);
        let dialing = self.dialing(region);
        let velocity = self.velocity_rules(name, &tc.velocity, blocked_action);
        Trunk {
            tenant: 0,
            name: name.into(),
            dialing,
            whitelist: self.index(wl, name),
            blacklist: self.index(bl, name),
            exclusive,
            blocked_action,
            allowed_action,
            needs_attestation,
            velocity: TrunkVelocity {
                rules: velocity,
                trusted_action: pass,
            },
        }
    }

    /// `default_trunk`, or the only trunk when there is one.
    fn default_trunk(&mut self, trunks: &Trunks) -> Option<TrunkId> {
        match &self.cfg.raw.default_trunk {
            Some(d) => match trunks.by_name.get(&d.value) {
                Some(&id) => Some(id),
                None => {
                    self.problem(
                        &d.referenced,
                        format!("default_trunk: no trunk named {:?}", d.value),
                    );
                    None
                }
            },
            None if trunks.list.len() == 1 => Some(0),
            None => None,
        }
    }

    fn index(&mut self, b: ListIndexBuilder, what: &str) -> ListIndex {
        let limit = self.limit;
        b.build(limit).unwrap_or_else(|e| {
            self.problems.push(Problem::new(
                self.file,
                0,
                0,
                format!("{what}: the rules do not fit in one automaton: {e}"),
            ));
            ListIndex::default()
        })
    }

    fn origin(&mut self, list_name: &str, bulk: bool) -> u16 {
        self.rules.origins.push(Origin {
            list_name: list_name.into(),
            bulk,
        });
        (self.rules.origins.len() - 1) as u16
    }

    fn schedules(&mut self) -> Vec<(String, Schedule)> {
        let mut out = Vec::new();
        self.schedules_into(&self.cfg.raw.schedules, &mut out);
        out
    }

    /// Compiles `defs` onto the end of `out`; their names resolve to them
    /// from now on (a tenant's schedule hides a top-level one of its name).
    fn schedules_into(
        &mut self,
        defs: &'a BTreeMap<String, Spanned<crate::config::types::ScheduleConfig>>,
        out: &mut Vec<(String, Schedule)>,
    ) {
        for (name, s) in defs {
            match Schedule::compile(&s.value) {
                Ok(c) => {
                    self.schedule_ids.insert(name.clone(), out.len());
                    out.push((name.clone(), c));
                }
                Err(errs) => {
                    self.schedule_ids.remove(name);
                    for e in errs {
                        self.problem(
                            &e.at.unwrap_or(s.referenced),
                            format!("schedule {name}: {}: {}", e.field, e.message),
                        );
                    }
                }
            }
        }
    }

    fn schedule_cond(
        &mut self,
        r: &ScheduleRef,
        loc: &Location,
        what: &str,
    ) -> Option<ScheduleCond> {
        let (name, inside) = match (&r.inside, &r.outside) {
            (Some(n), None) => (n, true),
            (None, Some(n)) => (n, false),
            _ => {
                self.problem(
                    loc,
                    format!(
                        "{what}: a schedule condition takes exactly one of `inside:` or `outside:`"
                    ),
                );
                return None;
            }
        };
        match self.schedule_ids.get(name) {
            Some(&schedule) => Some(ScheduleCond { schedule, inside }),
            None => {
                // A schedule that failed to compile was reported already.
                let tenant_has = self
                    .tenant
                    .as_ref()
                    .and_then(|t| self.cfg.raw.tenants.get(t))
                    .is_some_and(|t| t.value.schedules.contains_key(name));
                if !self.cfg.raw.schedules.contains_key(name) && !tenant_has {
                    self.problem(loc, format!("{what}: no schedule named {name:?}"));
                }
                None
            }
        }
    }

    fn action_id(&mut self, r: &Spanned<String>) -> ActionId {
        match self.action_ids.get(r.value.trim()) {
            Some(&id) => id,
            None => {
                let known: Vec<&str> = self.action_ids.keys().map(String::as_str).collect();
                let mut known = known;
                known.sort_unstable();
                self.problem(
                    &r.referenced,
                    format!(
                        "no action named {:?} (defined: {})",
                        r.value,
                        known.join(", ")
                    ),
                );
                NO_ACTION
            }
        }
    }
}

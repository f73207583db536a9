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
    ActionDef, ActionId, Exclusive, ListInfo, NO_ACTION, Origin, RuleSet, RuleTable, ScheduleCond,
    Trunk, TrunkId, did_key,
};
use super::schedule::Schedule;
use super::velocity::TrunkVelocity;
use crate::action::Plan;
use crate::config::types::{
    ActionConfig, ActionKind, ListRole, ScheduleRef, TrunkConfig, VelocityConfig, WhitelistMode,
};
use crate::config::{LoadedConfig, Problem, Problems};

mod lists;
mod reputation;
mod velocity;

impl RuleSet {
    /// Compiles a loaded configuration, or reports every problem in it.
    /// (Here rather than in `ruleset`, so that the rule set's types do not
    /// import their compiler.)
    pub fn compile(cfg: &LoadedConfig) -> Result<RuleSet, Problems> {
        Builder::new(cfg).build()
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
}

/// A system-level velocity rule, compiled per trunk (its default action is
/// the trunk's blocked action).
type VelocityConfigRef<'a> = &'a Spanned<VelocityConfig>;

/// The trunks being built, with their lookups.
#[derive(Default)]
struct Trunks {
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

    pub(super) fn build(mut self) -> Result<RuleSet, Problems> {
        let raw = &self.cfg.raw;
        let default_region = self.default_region();
        let schedules = self.schedules();
        let actions = self.actions();
        self.check_providers();
        let system_blocked_action = self.action_or(&raw.blocked_action, self.builtin("reject"));
        let protected = self.protected();
        let system = self.system_blacklist();
        self.system_attest = self.attest_rules > 0;
        self.system_velocity = raw.velocity.iter().collect();
        let trunks = self.trunks(default_region, system_blocked_action);
        let default_trunk = self.default_trunk(&trunks);
        let protected = self.index(protected, "protected");
        let system = self.index(system, "system blacklist");
        if !self.problems.is_empty() {
            // A system-level velocity rule is compiled for every trunk: its
            // problem is said once.
            let mut seen = HashSet::new();
            self.problems.retain(|p| seen.insert(p.to_string()));
            return Err(Problems(self.problems));
        }
        Ok(RuleSet {
            rules: self.rules,
            actions,
            schedules,
            protected,
            system,
            trunks: trunks.list,
            trunk_by_name: trunks.by_name,
            trunk_by_did: trunks.by_did,
            default_trunk,
            fail: raw.fail,
            system_blocked_action,
            lists: self.lists,
            backtrack_limit: self.limit,
        })
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
            path: None,
            rules: raw.blacklist.len(),
        });
        let mut lists = std::mem::take(&mut self.lists);
        self.list_files_into(&mut system, None, ListRole::Blacklist, &mut lists);
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
            trunks.by_name.insert("default".to_string(), 0);
            trunks.list.push(Trunk {
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
            trunks.by_name.insert(name.clone(), trunks.list.len());
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
        let id = trunks.list.len();
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
                    .get(prev)
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
                path: None,
                rules: count,
            });
        }
        let mut lists = std::mem::take(&mut self.lists);
        self.list_files_into(&mut wl, Some(name), ListRole::Whitelist, &mut lists);
        self.list_files_into(&mut bl, Some(name), ListRole::Blacklist, &mut lists);
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
        for (name, s) in &self.cfg.raw.schedules {
            match Schedule::compile(&s.value) {
                Ok(c) => {
                    self.schedule_ids.insert(name.clone(), out.len());
                    out.push((name.clone(), c));
                }
                Err(errs) => {
                    for e in errs {
                        self.problem(
                            &e.at.unwrap_or(s.referenced),
                            format!("schedule {name}: {}: {}", e.field, e.message),
                        );
                    }
                }
            }
        }
        out
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
                if !self.cfg.raw.schedules.contains_key(name) {
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

    fn actions(&mut self) -> Vec<ActionDef> {
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
                name: name.into(),
            })
            .collect()
    }

    /// Resolves one named action, reporting its problems at its place.
    fn resolve_action(
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

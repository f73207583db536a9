//! Compiling a loaded configuration into a [`RuleSet`]: one method per
//! section (protected numbers, the system blacklist, each trunk, the default
//! trunk), every list indexed, every action resolved per PBX, every
//! reference checked. Runs off the call path, at start and on reload.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::attest::Attest;
use super::index::{ListIndex, ListIndexBuilder};
use super::number::{Dialing, Region};
use super::pattern;
use super::ruleset::{
    ActionDef, ActionId, Exclusive, ListInfo, NO_ACTION, Origin, RuleSet, RuleTable, ScheduleCond,
    Trunk, TrunkId, did_key,
};
use super::schedule::Schedule;
use super::velocity::{Scope, VelocityRule};
use crate::action::Plan;
use crate::config::types::{
    ActionConfig, ActionKind, ListRole, MatchType, RuleConfig, ScheduleRef, TrunkConfig,
    VelocityConfig, WhitelistMode,
};
use crate::config::{LoadedConfig, Problem, Problems};

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
                velocity: Vec::new(),
            });
            let velocity = self.velocity_rules("default", &[], system_blocked_action);
            trunks.list[0].velocity = velocity;
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
            velocity,
        }
    }

    /// The trunk's own velocity rules, then the system-level ones; each is
    /// also a row of the rule table (named in the log and the metrics).
    fn velocity_rules(
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
            self.rules
                .condition_only(rule, &format!("velocity {}", scope.as_string()));
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

    /// Compiles inline YAML rules into a list.
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

    fn rules_into(
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
                None if rc.anonymous || rc.attestation.is_some() => None,
                None => {
                    self.problem(
                        &r.referenced,
                        format!(
                            "rule {name}: needs `pattern:`, `anonymous: true` or `attestation:`"
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
                    let levels: Vec<&str> = Attest::ALL
                        .iter()
                        .filter(|l| mask & l.bit() != 0)
                        .map(|l| l.as_str())
                        .collect();
                    self.rules.condition_only(
                        id,
                        &format!(
                            "{}[{}]",
                            super::ruleset::ATTESTATION_RULE,
                            levels.join(", ")
                        ),
                    );
                    list.add_always(id);
                }
            }
            if rc.anonymous {
                list.add_anonymous(id);
            }
            if let Some(c) = &compiled {
                list.add(id, c, priority);
            }
        }
    }

    /// Adds the rows of every bulk list file of `trunk` with `role`.
    fn list_files_into(
        &mut self,
        list: &mut ListIndexBuilder,
        trunk: Option<&str>,
        role: ListRole,
        infos: &mut Vec<ListInfo>,
    ) {
        let cfg = self.cfg;
        for lf in cfg
            .lists
            .iter()
            .filter(|l| l.trunk.as_deref() == trunk && l.role == role)
        {
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
                kind: match (trunk, role) {
                    (None, _) => "system_blacklist",
                    (Some(_), ListRole::Whitelist) => "whitelist",
                    (Some(_), ListRole::Blacklist) => "blacklist",
                },
                trunk: trunk.map(str::to_string),
                path: Some(lf.path.clone()),
                rules: lf.rows.len(),
            });
        }
    }
}

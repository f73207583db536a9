//! The compiled, immutable rule set: every list indexed, every action
//! resolved per PBX, every reference checked. Built off the call path (at
//! start and on reload) and shared by all calls through an `Arc`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_saphyr::{Location, Spanned};

use super::index::{ListIndex, ListIndexBuilder, RuleId};
use super::number::{Dialing, Region};
use super::pattern::{self, CompiledPattern};
use super::schedule::Schedule;
use crate::action::{Cause, Pbx, Plan, Step, Tone};
use crate::config::types::{
    ActionConfig, ActionKind, ActionMode, CauseValue, FailMode, ListRole, MatchType, RuleConfig,
    ScheduleRef, Then, WhitelistMode,
};
use crate::config::{LoadedConfig, Problem, Problems};

pub type ActionId = u16;
pub type TrunkId = usize;

/// A rule's schedule condition: active while `schedule` is open (`inside`)
/// or closed (`!inside`).
#[derive(Debug, Clone, Copy)]
pub struct ScheduleCond {
    pub schedule: usize,
    pub inside: bool,
}

/// When a trunk is in exclusive (whitelist-only) mode.
#[derive(Debug, Clone, Copy)]
pub enum Exclusive {
    Never,
    Always,
    When(ScheduleCond),
}

/// A named action resolved for each PBX.
#[derive(Debug, Clone)]
pub struct ActionDef {
    pub name: Arc<str>,
    pub kind: ActionKind,
    pub plans: [Arc<Plan>; 2],
}

impl ActionDef {
    pub fn plan(&self, pbx: Pbx) -> &Arc<Plan> {
        &self.plans[pbx.index()]
    }
}

#[derive(Debug)]
pub struct Trunk {
    pub name: Arc<str>,
    /// The dialling rules of the trunk's region, compiled with the rule set
    /// (shared by every trunk of that region) so that no call waits for them.
    pub dialing: Arc<Dialing>,
    pub whitelist: ListIndex,
    pub blacklist: ListIndex,
    pub exclusive: Exclusive,
    pub blocked_action: ActionId,
    pub allowed_action: ActionId,
}

/// Where a rule came from: its own name counts in metrics, entries of bulk
/// list files count under the list's name.
#[derive(Debug, Clone)]
pub struct Origin {
    pub list_name: Arc<str>,
    pub bulk: bool,
}

/// Per-rule facts, stored column-wise so a million-entry list stays small.
#[derive(Debug, Default)]
pub struct RuleTable {
    names: String,
    name_ends: Vec<u32>,
    priority: Vec<i32>,
    /// `NO_ACTION`: the list's default action.
    action: Vec<ActionId>,
    enabled: Vec<bool>,
    /// Packed specificity: lower is more specific.
    specificity: Vec<u16>,
    origin: Vec<u16>,
    schedule: HashMap<RuleId, ScheduleCond>,
    /// Pattern text and match type of non-exact rules (for explanations).
    patterns: HashMap<RuleId, (Box<str>, MatchType)>,
    origins: Vec<Origin>,
}

pub const NO_ACTION: ActionId = ActionId::MAX;

/// The pattern text shown for an `anonymous: true` rule without a pattern.
pub const ANONYMOUS_RULE: &str = "anonymous: true";

impl RuleTable {
    pub fn len(&self) -> usize {
        self.name_ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.name_ends.is_empty()
    }
    pub fn name(&self, id: RuleId) -> &str {
        let i = id as usize;
        let start = if i == 0 {
            0
        } else {
            self.name_ends[i - 1] as usize
        };
        &self.names[start..self.name_ends[i] as usize]
    }
    pub fn priority(&self, id: RuleId) -> i32 {
        self.priority[id as usize]
    }
    pub fn action(&self, id: RuleId) -> Option<ActionId> {
        Some(self.action[id as usize]).filter(|&a| a != NO_ACTION)
    }
    pub fn enabled(&self, id: RuleId) -> bool {
        self.enabled[id as usize]
    }
    pub fn specificity(&self, id: RuleId) -> u16 {
        self.specificity[id as usize]
    }
    pub fn schedule(&self, id: RuleId) -> Option<ScheduleCond> {
        self.schedule.get(&id).copied()
    }
    pub fn origin(&self, id: RuleId) -> &Origin {
        &self.origins[self.origin[id as usize] as usize]
    }
    /// The `rule` label of `callguard_rule_hits_total`.
    pub fn metric_label(&self, id: RuleId) -> &str {
        let o = self.origin(id);
        if o.bulk { &o.list_name } else { self.name(id) }
    }
    pub fn pattern(&self, id: RuleId) -> Option<(&str, MatchType)> {
        self.patterns.get(&id).map(|(p, m)| (&**p, *m))
    }

    fn push(
        &mut self,
        name: &str,
        priority: i32,
        action: ActionId,
        enabled: bool,
        pattern: Option<&CompiledPattern>,
        origin: u16,
    ) -> RuleId {
        let id = self.name_ends.len() as RuleId;
        self.names.push_str(name);
        self.name_ends.push(self.names.len() as u32);
        self.priority.push(priority);
        self.action.push(action);
        self.enabled.push(enabled);
        let spec = pattern.map_or(0, |p| {
            let (rank, len) = p.specificity();
            (u16::from(rank) << 8) | (255 - len.min(255) as u16)
        });
        self.specificity.push(spec);
        self.origin.push(origin);
        match pattern {
            Some(p) if p.match_type != MatchType::Exact => {
                self.patterns
                    .insert(id, (p.source.as_str().into(), p.match_type));
            }
            Some(_) => {}
            // An `anonymous: true` rule with no pattern.
            None => {
                self.patterns
                    .insert(id, (ANONYMOUS_RULE.into(), MatchType::Exact));
            }
        }
        id
    }
}

/// A list as the API and metrics see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListInfo {
    pub name: String,
    /// `protected`, `system_blacklist`, `whitelist` or `blacklist`.
    pub kind: &'static str,
    pub trunk: Option<String>,
    /// The file behind a bulk list (API writes go there).
    pub path: Option<PathBuf>,
    pub rules: usize,
}

/// How [`RuleSet::choose_trunk`] chose a call's trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrunkBy {
    /// The dialplan named it.
    Named,
    /// This dialled number selects it.
    Did(String),
    /// `default_trunk`.
    Default,
    /// No trunk at all.
    Nothing,
}

/// The trunk of a call, how it was chosen, and the trunk name the dialplan
/// gave that matches no configured trunk, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrunkChoice {
    pub trunk: Option<TrunkId>,
    pub by: TrunkBy,
    pub unknown: Option<String>,
}

impl TrunkChoice {
    /// For an unknown trunk name: which trunk was chosen instead and why,
    /// e.g. `trunk "nosuch" named by the dialplan does not exist; trunk
    /// support chosen by DID +18005550100`. `None` otherwise.
    pub fn note(&self, rs: &RuleSet) -> Option<String> {
        let name = self.unknown.as_deref()?;
        let instead = match (&self.by, self.trunk) {
            (TrunkBy::Did(did), Some(t)) => {
                format!("trunk {} chosen by DID {did}", rs.trunk(t).name)
            }
            (TrunkBy::Default, Some(t)) => {
                format!("trunk {} chosen as default_trunk", rs.trunk(t).name)
            }
            _ => "no DID matched and there is no default_trunk".to_string(),
        };
        Some(format!(
            "trunk {name:?} named by the dialplan does not exist; {instead}"
        ))
    }
}

/// Everything a decision needs, immutable once built.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: RuleTable,
    pub actions: Vec<ActionDef>,
    pub schedules: Vec<(String, Schedule)>,
    pub protected: ListIndex,
    pub system: ListIndex,
    pub trunks: Vec<Trunk>,
    trunk_by_name: HashMap<String, TrunkId>,
    trunk_by_did: HashMap<String, TrunkId>,
    pub default_trunk: Option<TrunkId>,
    pub fail: FailMode,
    /// The admin API's settings as installed with these rules (who may read
    /// and change), so a request never re-reads the file.
    pub http: crate::config::types::HttpConfig,
    pub system_blocked_action: ActionId,
    pub lists: Vec<ListInfo>,
    /// Files this set was built from (config and lists), for the watcher.
    pub files: Vec<PathBuf>,
    pub backtrack_limit: usize,
}

/// Strips everything but digits and a leading `+`, so DIDs match however
/// they are written (`+1 555 0100` = `+15550100`).
pub fn did_key(did: &str) -> String {
    let did = did.trim();
    let mut out = String::with_capacity(did.len());
    if did.starts_with('+') {
        out.push('+');
    }
    out.extend(did.chars().filter(char::is_ascii_digit));
    out
}

impl RuleSet {
    pub fn action(&self, id: ActionId) -> &ActionDef {
        &self.actions[id as usize]
    }

    pub fn trunk(&self, id: TrunkId) -> &Trunk {
        &self.trunks[id]
    }

    pub fn trunk_by_name(&self, name: &str) -> Option<TrunkId> {
        self.trunk_by_name.get(name).copied()
    }

    pub fn trunk_by_did(&self, did: &str) -> Option<TrunkId> {
        let key = did_key(did);
        if key.is_empty() || key == "+" {
            return None;
        }
        self.trunk_by_did
            .get(&key)
            .or_else(|| {
                // `+15550100` in the config also selects on a DID sent as `15550100`.
                let alt = match key.strip_prefix('+') {
                    Some(rest) => rest.to_string(),
                    None => format!("+{key}"),
                };
                self.trunk_by_did.get(&alt)
            })
            .copied()
    }

    /// The trunk a call belongs to: the one the dialplan names, else the
    /// first DID that selects one, else the default trunk. An unknown trunk
    /// name falls through to the DID (a typo in a dialplan must not drop calls).
    pub fn select_trunk<'a>(
        &self,
        hint: Option<&str>,
        dids: impl IntoIterator<Item = &'a str>,
    ) -> Option<TrunkId> {
        self.choose_trunk(hint, dids).trunk
    }

    /// [`RuleSet::select_trunk`] with how the trunk was chosen, so that a
    /// trunk name the dialplan gives but the config lacks (`?trunk=nosuch`)
    /// is logged, counted and explained in the call's reason instead of
    /// passing unnoticed.
    pub fn choose_trunk<'a>(
        &self,
        hint: Option<&str>,
        dids: impl IntoIterator<Item = &'a str>,
    ) -> TrunkChoice {
        let hint = hint.map(str::trim).filter(|h| !h.is_empty());
        if let Some(t) = hint.and_then(|h| self.trunk_by_name(h)) {
            return TrunkChoice {
                trunk: Some(t),
                by: TrunkBy::Named,
                unknown: None,
            };
        }
        let unknown = hint.map(str::to_string);
        if let Some((t, did)) = dids
            .into_iter()
            .find_map(|d| self.trunk_by_did(d).map(|t| (t, d)))
        {
            return TrunkChoice {
                trunk: Some(t),
                by: TrunkBy::Did(did.to_string()),
                unknown,
            };
        }
        match self.default_trunk {
            Some(t) => TrunkChoice {
                trunk: Some(t),
                by: TrunkBy::Default,
                unknown,
            },
            None => TrunkChoice {
                trunk: None,
                by: TrunkBy::Nothing,
                unknown,
            },
        }
    }

    pub fn cond_active(&self, cond: ScheduleCond, at: DateTime<Utc>) -> bool {
        self.schedules[cond.schedule].1.is_open(at) == cond.inside
    }

    pub fn exclusive_active(&self, trunk: TrunkId, at: DateTime<Utc>) -> bool {
        match self.trunks[trunk].exclusive {
            Exclusive::Never => false,
            Exclusive::Always => true,
            Exclusive::When(c) => self.cond_active(c, at),
        }
    }

    pub fn schedule_name(&self, cond: ScheduleCond) -> &str {
        &self.schedules[cond.schedule].0
    }

    /// Actions every configuration has unless it defines its own of that name.
    pub const BUILTIN_ACTIONS: [&'static str; 3] = ["reject", "pass", "allow"];

    /// Compiles a loaded configuration, or reports every problem in it.
    pub fn compile(cfg: &LoadedConfig) -> Result<RuleSet, Problems> {
        Builder::new(cfg).build()
    }
}

struct Builder<'a> {
    cfg: &'a LoadedConfig,
    file: &'a str,
    problems: Vec<Problem>,
    rules: RuleTable,
    action_ids: HashMap<String, ActionId>,
    schedule_ids: HashMap<String, usize>,
    list_names: HashSet<String>,
    dialing: HashMap<Region, Arc<Dialing>>,
}

const BUILTIN_ACTIONS: &[(&str, ActionKind)] = &[
    ("reject", ActionKind::Reject),
    ("pass", ActionKind::Continue),
    ("allow", ActionKind::Continue),
];

impl<'a> Builder<'a> {
    fn new(cfg: &'a LoadedConfig) -> Self {
        Builder {
            cfg,
            file: &cfg.file,
            problems: cfg.problems.clone(),
            rules: RuleTable::default(),
            action_ids: HashMap::new(),
            schedule_ids: HashMap::new(),
            list_names: HashSet::new(),
            dialing: HashMap::new(),
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

    fn build(mut self) -> Result<RuleSet, Problems> {
        let raw = &self.cfg.raw;
        let limit = raw.policy.regex_backtrack_limit;
        let default_region = match Region::parse(&raw.normalize.default_region) {
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
        // Ready before any call, whether or not a trunk uses it.
        self.dialing(default_region);
        let schedules = self.schedules();
        let actions = self.actions();
        let action_ref = |b: &mut Self, r: &Option<Spanned<String>>, fallback: ActionId| match r {
            None => fallback,
            Some(s) => b.action_id(s),
        };
        let reject = self.action_ids["reject"];
        let pass = self.action_ids["pass"];
        let system_blocked_action = action_ref(&mut self, &raw.blocked_action, reject);

        // Protected numbers: rules of their own, never blocked.
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
        let mut lists = vec![ListInfo {
            name: "protected".into(),
            kind: "protected",
            trunk: None,
            path: None,
            rules: raw.protected.len(),
        }];

        let mut system = ListIndexBuilder::default();
        self.rules_into(&mut system, &raw.blacklist, "system_blacklist");
        lists.push(ListInfo {
            name: "system_blacklist".into(),
            kind: "system_blacklist",
            trunk: None,
            path: None,
            rules: raw.blacklist.len(),
        });
        self.list_files_into(&mut system, None, ListRole::Blacklist, &mut lists);

        let mut trunks = Vec::new();
        let mut trunk_by_name = HashMap::new();
        let mut trunk_by_did: HashMap<String, TrunkId> = HashMap::new();
        let mut trunk_cfgs: Vec<(String, Option<&Spanned<_>>)> = raw
            .trunks
            .iter()
            .map(|(n, t)| (n.clone(), Some(t)))
            .collect();
        if trunk_cfgs.is_empty() {
            // With no trunks configured every call uses an implicit one, so a
            // config holding only a system blacklist still screens calls.
            trunk_cfgs.push(("default".to_string(), None));
        }
        for (name, t) in trunk_cfgs {
            let id = trunks.len();
            trunk_by_name.insert(name.clone(), id);
            let Some(t) = t else {
                let dialing = self.dialing(default_region);
                trunks.push(Trunk {
                    name: name.as_str().into(),
                    dialing,
                    whitelist: ListIndex::default(),
                    blacklist: ListIndex::default(),
                    exclusive: Exclusive::Never,
                    blocked_action: system_blocked_action,
                    allowed_action: pass,
                });
                continue;
            };
            let tc = &t.value;
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
                } else if let Some(prev) = trunk_by_did.insert(key, id) {
                    let prev_name = trunks
                        .get(prev)
                        .map_or(name.clone(), |t: &Trunk| t.name.to_string());
                    self.problem(
                        &t.referenced,
                        format!("trunk {name}: DID {did:?} already selects trunk {prev_name}"),
                    );
                }
            }
            let mut wl = ListIndexBuilder::default();
            let mut bl = ListIndexBuilder::default();
            self.rules_into(&mut wl, &tc.whitelist, &format!("{name}.whitelist"));
            self.rules_into(&mut bl, &tc.blacklist, &format!("{name}.blacklist"));
            for (kind, count) in [
                ("whitelist", tc.whitelist.len()),
                ("blacklist", tc.blacklist.len()),
            ] {
                lists.push(ListInfo {
                    name: format!("{name}.{kind}"),
                    kind,
                    trunk: Some(name.clone()),
                    path: None,
                    rules: count,
                });
            }
            self.list_files_into(&mut wl, Some(&name), ListRole::Whitelist, &mut lists);
            self.list_files_into(&mut bl, Some(&name), ListRole::Blacklist, &mut lists);
            let exclusive = match (&tc.exclusive, tc.whitelist_mode) {
                (Some(r), _) => match self.schedule_cond(r, &t.referenced, &name) {
                    Some(c) => Exclusive::When(c),
                    None => Exclusive::Never,
                },
                (None, WhitelistMode::Exclusive) => Exclusive::Always,
                (None, WhitelistMode::Additive) => Exclusive::Never,
            };
            let blocked_action = action_ref(&mut self, &tc.blocked_action, system_blocked_action);
            let allowed_action = action_ref(&mut self, &tc.allowed_action, pass);
            let dialing = self.dialing(region);
            trunks.push(Trunk {
                name: name.as_str().into(),
                dialing,
                whitelist: self.index(wl, limit, &name),
                blacklist: self.index(bl, limit, &name),
                exclusive,
                blocked_action,
                allowed_action,
            });
        }
        let default_trunk = match &raw.default_trunk {
            Some(d) => match trunk_by_name.get(&d.value) {
                Some(&id) => Some(id),
                None => {
                    self.problem(
                        &d.referenced,
                        format!("default_trunk: no trunk named {:?}", d.value),
                    );
                    None
                }
            },
            None if trunks.len() == 1 => Some(0),
            None => None,
        };
        let protected = self.index(protected, limit, "protected");
        let system = self.index(system, limit, "system blacklist");
        if !self.problems.is_empty() {
            return Err(Problems(self.problems));
        }
        Ok(RuleSet {
            rules: self.rules,
            actions,
            schedules,
            protected,
            system,
            trunks,
            trunk_by_name,
            trunk_by_did,
            default_trunk,
            fail: raw.fail,
            http: raw.http.clone(),
            system_blocked_action,
            lists,
            files: self.cfg.files.clone(),
            backtrack_limit: limit,
        })
    }

    fn index(&mut self, b: ListIndexBuilder, limit: usize, what: &str) -> ListIndex {
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
        // Plans without `on_no_answer` first, so a bridge can point at them.
        let mut plans: BTreeMap<String, [Arc<Plan>; 2]> = BTreeMap::new();
        for (name, cfg) in &names {
            if let Some(c) = cfg
                && c.value.kind == ActionKind::WhisperBridge
            {
                continue;
            }
            let p = match cfg {
                Some(c) => self.resolve(name, c, &plans),
                None => builtin_plans(name),
            };
            plans.insert(name.clone(), p);
        }
        for (name, cfg) in &names {
            if let Some(c) = cfg
                && c.value.kind == ActionKind::WhisperBridge
            {
                let p = self.resolve(name, c, &plans);
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
                plans: plans.remove(&name).unwrap_or_else(|| builtin_plans("pass")),
                name: name.into(),
            })
            .collect()
    }

    fn resolve(
        &mut self,
        name: &str,
        a: &Spanned<ActionConfig>,
        done: &BTreeMap<String, [Arc<Plan>; 2]>,
    ) -> [Arc<Plan>; 2] {
        let loc = a.referenced;
        let c = &a.value;
        let mut errs: Vec<String> = Vec::new();
        let plan_for = |pbx: Pbx, errs: &mut Vec<String>| -> Plan {
            let o = match pbx {
                Pbx::Asterisk => c.asterisk.clone(),
                Pbx::FreeSwitch => c.freeswitch.clone(),
            }
            .unwrap_or_default();
            let pick = |over: &Option<String>, base: &Option<String>| {
                over.clone().or_else(|| base.clone())
            };
            let step = match c.kind {
                ActionKind::Reject => {
                    let tone = match pick(&o.tone, &c.tone).as_deref().unwrap_or("busy") {
                        "busy" => Tone::Busy,
                        "congestion" => Tone::Congestion,
                        "hangup" => Tone::Hangup,
                        other => {
                            errs.push(format!("tone {other:?}: use busy, congestion or hangup"));
                            Tone::Busy
                        }
                    };
                    let cause = match &c.cause {
                        None => match tone {
                            Tone::Busy => Cause::USER_BUSY,
                            Tone::Congestion => Cause::NORMAL_CIRCUIT_CONGESTION,
                            Tone::Hangup => Cause::CALL_REJECTED,
                        },
                        Some(CauseValue::Code(n)) => {
                            Cause::parse(&n.to_string()).unwrap_or_else(|| {
                                errs.push(format!("cause {n}: a Q.850 cause is 1-127"));
                                Cause::CALL_REJECTED
                            })
                        }
                        Some(CauseValue::Name(n)) => Cause::parse(n).unwrap_or_else(|| {
                            errs.push(format!("cause {n:?}: unknown cause name"));
                            Cause::CALL_REJECTED
                        }),
                    };
                    Step::Reject {
                        tone,
                        cause,
                        seconds: c.seconds.unwrap_or(5),
                    }
                }
                ActionKind::Play => Step::Play {
                    sound: need(pick(&o.sound, &c.sound), "sound", c.kind, errs),
                    answer: c.answer.unwrap_or(true),
                    then_hangup: c.then.unwrap_or_default() == Then::Hangup,
                },
                ActionKind::Voicemail => Step::Voicemail {
                    mailbox: need(pick(&o.mailbox, &c.mailbox), "mailbox", c.kind, errs),
                },
                ActionKind::Transfer => Step::Transfer {
                    target: need(pick(&o.target, &c.target), "target", c.kind, errs),
                },
                ActionKind::WhisperBridge => {
                    let on_no_answer = c.on_no_answer.as_ref().and_then(|n| match done.get(n) {
                        Some(p) => Some(p[pbx.index()].clone()),
                        None => {
                            errs.push(format!(
                                "on_no_answer: no action named {n:?} (or it is itself a whisper_bridge)"
                            ));
                            None
                        }
                    });
                    Step::Bridge {
                        dial: need(pick(&o.dial, &c.dial), "dial", c.kind, errs),
                        tone: pick(&o.tone, &c.tone).unwrap_or_else(|| match pbx {
                            Pbx::Asterisk => "beep".into(),
                            Pbx::FreeSwitch => "tone_stream://%(200,0,800)".into(),
                        }),
                        timeout: c.timeout.unwrap_or(30),
                        on_no_answer,
                    }
                }
                ActionKind::Continue => Step::Continue,
            };
            Plan {
                action: name.into(),
                advise: c.mode == ActionMode::Advise,
                step,
            }
        };
        let plans = [
            Arc::new(plan_for(Pbx::Asterisk, &mut errs)),
            Arc::new(plan_for(Pbx::FreeSwitch, &mut errs)),
        ];
        for e in errs {
            self.problem(&loc, format!("action {name}: {e}"));
        }
        plans
    }

    /// Compiles inline YAML rules into a list.
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
                None if rc.anonymous => None,
                None => {
                    self.problem(
                        &r.referenced,
                        format!("rule {name}: needs `pattern:` or `anonymous: true`"),
                    );
                    continue;
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

/// A required string of an action, or a problem naming the key.
fn need(v: Option<String>, key: &str, kind: ActionKind, errs: &mut Vec<String>) -> String {
    match v.filter(|s| !s.trim().is_empty()) {
        Some(s) => s,
        None => {
            let m = format!("`{key}:` is required for kind {kind:?}");
            if !errs.contains(&m) {
                errs.push(m);
            }
            String::new()
        }
    }
}

fn builtin_plans(name: &str) -> [Arc<Plan>; 2] {
    let step = match name {
        "reject" => Step::Reject {
            tone: Tone::Busy,
            cause: Cause::USER_BUSY,
            seconds: 5,
        },
        _ => Step::Continue,
    };
    let p = Arc::new(Plan {
        action: name.into(),
        advise: false,
        step,
    });
    [p.clone(), p]
}

//! The compiled, immutable rule set: every list indexed, every action
//! resolved per PBX, every reference checked. Built off the call path (at
//! start and on reload) and shared by all calls through an `Arc`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::index::{ListIndex, RuleId};
use super::number::Dialing;
use super::pattern::CompiledPattern;
use super::schedule::Schedule;
use crate::action::{EdgeStep, Pbx, Plan};
use crate::config::types::{ActionKind, FailMode, MatchType};

pub(crate) use super::ids::{ActionId, TrunkId};

mod tenant;
pub(crate) use tenant::{Tenant, TenantInputs, User};

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
    /// What the SIP edge does with the call (refuse with a code, hand on, pass).
    pub edge: EdgeStep,
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
    /// A rule of this trunk (or of the system blacklist) has an
    /// `attestation:` condition: the driver fetches the call's level.
    pub needs_attestation: bool,
    /// Velocity rules of this trunk, then the system-level ones.
    pub velocity: super::velocity::TrunkVelocity,
    /// The tenant of the trunk (0: the default tenant). A tenant's trunk is
    /// named `TENANT.TRUNK`, so names, counters and metrics stay apart.
    pub tenant: TenantId,
}

/// A tenant (0 is the default one: the top level of the file).
pub(crate) type TenantId = usize;
/// A user of a tenant (`Tenant::user`).
pub(crate) type UserId = usize;

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
    pub(super) schedule: HashMap<RuleId, ScheduleCond>,
    /// What non-exact rules match on (for explanations and captures).
    kinds: HashMap<RuleId, RuleKind>,
    pub(super) origins: Vec<Origin>,
    /// `attestation:` conditions: a mask of [`super::attest::Attest::bit`]s.
    pub(super) attest: HashMap<RuleId, u8>,
    /// `reputation:` / `category:` / `caller_name:` conditions.
    pub(super) reputation: HashMap<RuleId, super::reputation::RepCond>,
}

pub(crate) const NO_ACTION: ActionId = ActionId::MAX;

/// What a rule matches on when it is not an exact number (exact rules have
/// none): a kind of rule is a variant, never a sentinel pattern text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    /// A non-exact pattern as written, with its match type.
    Pattern(Box<str>, MatchType),
    /// `anonymous: true` and no pattern: the hidden callers.
    Anonymous,
    /// Only an `attestation:` condition: a mask of
    /// [`super::attest::Attest::bit`]s.
    Attestation(u8),
    /// A velocity rule's row (its scope).
    Velocity(super::velocity::Scope),
    /// Only reputation conditions (score, category, caller name).
    Reputation,
}

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
    pub(crate) fn metric_label(&self, id: RuleId) -> &str {
        let o = self.origin(id);
        if o.bulk { &o.list_name } else { self.name(id) }
    }
    /// What the rule matches on, unless it is an exact number.
    pub fn kind(&self, id: RuleId) -> Option<&RuleKind> {
        self.kinds.get(&id)
    }
    /// The rule's non-exact pattern and its match type, if it has one.
    pub fn pattern(&self, id: RuleId) -> Option<(&str, MatchType)> {
        match self.kinds.get(&id)? {
            RuleKind::Pattern(p, m) => Some((p, *m)),
            _ => None,
        }
    }
    /// The rule's attestation condition, if it has one.
    pub fn attestation(&self, id: RuleId) -> Option<u8> {
        self.attest.get(&id).copied()
    }
    /// The rule's reputation condition, if it has one.
    pub fn reputation(&self, id: RuleId) -> Option<&super::reputation::RepCond> {
        if self.reputation.is_empty() {
            return None;
        }
        self.reputation.get(&id)
    }
    /// Whether any rule has a reputation condition.
    pub fn has_reputation_rules(&self) -> bool {
        !self.reputation.is_empty()
    }
    /// A rule without a pattern, only a condition (attestation, velocity):
    /// the least specific of all, explained by its condition.
    pub(super) fn condition_only(&mut self, id: RuleId, kind: RuleKind) {
        self.specificity[id as usize] = u16::MAX;
        self.kinds.insert(id, kind);
    }

    pub(super) fn push(
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
                self.kinds.insert(
                    id,
                    RuleKind::Pattern(p.source.as_str().into(), p.match_type),
                );
            }
            Some(_) => {}
            // An `anonymous: true` rule with no pattern.
            None => {
                self.kinds.insert(id, RuleKind::Anonymous);
            }
        }
        id
    }
}

/// A list as the API and metrics see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListInfo {
    pub name: String,
    /// `protected`, `system_blacklist`, `whitelist`, `blacklist`,
    /// `user_allow` or `user_block`.
    pub kind: &'static str,
    pub trunk: Option<String>,
    /// The tenant the list belongs to (absent: the default tenant).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The user (extension) whose own list this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The file behind a bulk list (API writes go there).
    pub path: Option<PathBuf>,
    pub rules: usize,
}

/// How [`RuleSet::choose_trunk`] chose a call's trunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TrunkBy {
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
pub(crate) struct TrunkChoice {
    pub trunk: Option<TrunkId>,
    pub by: TrunkBy,
    pub unknown: Option<String>,
}

impl TrunkChoice {
    /// For an unknown trunk name: which trunk was chosen instead and why,
    /// e.g. `trunk "nosuch" named by the dialplan does not exist; trunk
    /// support chosen by DID +18005550100`. `None` otherwise.
    pub(crate) fn note(&self, rs: &RuleSet) -> Option<String> {
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
    pub(super) trunk_by_name: HashMap<String, TrunkId>,
    pub(super) trunk_by_did: HashMap<String, TrunkId>,
    pub default_trunk: Option<TrunkId>,
    pub fail: FailMode,
    pub system_blocked_action: ActionId,
    pub lists: Vec<ListInfo>,
    pub backtrack_limit: usize,
    /// Every tenant, the default one (the top level of the file) first.
    pub tenants: Vec<Tenant>,
    pub(super) tenant_by_name: HashMap<String, TenantId>,
    /// `domains:` of the tenants, lower-case.
    pub(super) tenant_by_domain: HashMap<String, TenantId>,
    /// What each named tenant was compiled from (its last good version).
    pub tenant_inputs: Arc<std::collections::BTreeMap<String, TenantInputs>>,
    /// Tenants compiled from their last good version (or left empty) because
    /// their current one has problems: one line per problem, naming the tenant.
    pub tenant_problems: Vec<String>,
}

/// How a call's tenant was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TenantBy {
    /// The dialplan named it (`?tenant=`, `tenant=`, `callguard_tenant`).
    Named,
    /// The FreeSWITCH domain.
    Domain,
    /// Nothing named one: the default tenant.
    Default,
    /// A name or domain no tenant has: the default tenant.
    Unknown,
}

/// Strips everything but digits and a leading `+`, so DIDs match however
/// they are written (`+1 555 0100` = `+15550100`).
pub(crate) fn did_key(did: &str) -> String {
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

    /// Every decision of this rule set runs in time linear in the caller
    /// (no look-around rule in any list): it can be decided on the runtime,
    /// without the blocking pool's thread hop that a backtracking rule needs
    /// (issue 26). Walked once per rule set (`Snapshot::new`).
    pub fn decides_in_linear_time(&self) -> bool {
        let trunks = self
            .trunks
            .iter()
            .flat_map(|t| [&t.whitelist, &t.blacklist]);
        let tenants = self.tenants.iter().flat_map(|t| {
            [&t.whitelist, &t.blacklist]
                .into_iter()
                .chain(t.users.iter().flat_map(|u| [&u.allow, &u.block]))
        });
        ![&self.protected, &self.system]
            .into_iter()
            .chain(trunks)
            .chain(tenants)
            .any(ListIndex::needs_backtracking)
    }

    pub fn tenant(&self, id: TenantId) -> &Tenant {
        &self.tenants[id]
    }

    pub fn tenant_by_name(&self, name: &str) -> Option<TenantId> {
        self.tenant_by_name.get(name).copied()
    }

    /// The tenant of a call: the one the dialplan names, else the one whose
    /// domain it is, else the default tenant. Lookups in precomputed maps.
    pub(crate) fn choose_tenant(
        &self,
        hint: Option<&str>,
        domain: Option<&str>,
    ) -> (TenantId, TenantBy) {
        if self.tenants.len() <= 1 {
            return (0, TenantBy::Default);
        }
        let hint = hint.map(str::trim).filter(|h| !h.is_empty());
        if let Some(h) = hint {
            return match self.tenant_by_name(h) {
                Some(t) => (t, TenantBy::Named),
                None => (0, TenantBy::Unknown),
            };
        }
        let domain = domain.map(str::trim).filter(|d| !d.is_empty());
        match domain {
            None => (0, TenantBy::Default),
            Some(d) => {
                let hit = self.tenant_by_domain.get(d).copied().or_else(|| {
                    d.bytes()
                        .any(|b| b.is_ascii_uppercase())
                        .then(|| d.to_ascii_lowercase())
                        .and_then(|l| self.tenant_by_domain.get(&l).copied())
                });
                match hit {
                    Some(t) => (t, TenantBy::Domain),
                    None => (0, TenantBy::Default),
                }
            }
        }
    }

    /// [`RuleSet::choose_trunk`] within one tenant: its trunk names, DIDs
    /// and default trunk.
    pub(crate) fn choose_trunk_in<'a>(
        &self,
        tenant: TenantId,
        hint: Option<&str>,
        dids: impl IntoIterator<Item = &'a str>,
    ) -> TrunkChoice {
        if tenant == 0 {
            return self.choose_trunk(hint, dids);
        }
        let t = &self.tenants[tenant];
        let hint = hint.map(str::trim).filter(|h| !h.is_empty());
        if let Some(id) = hint.and_then(|h| t.trunk_by_name.get(h).copied()) {
            return TrunkChoice {
                trunk: Some(id),
                by: TrunkBy::Named,
                unknown: None,
            };
        }
        let unknown = hint.map(str::to_string);
        if let Some((id, did)) = dids.into_iter().find_map(|d| {
            let key = did_key(d);
            if key.is_empty() || key == "+" {
                return None;
            }
            let alt = match key.strip_prefix('+') {
                Some(rest) => rest.to_string(),
                None => format!("+{key}"),
            };
            t.trunk_by_did
                .get(&key)
                .or_else(|| t.trunk_by_did.get(&alt))
                .map(|&id| (id, d))
        }) {
            return TrunkChoice {
                trunk: Some(id),
                by: TrunkBy::Did(did.to_string()),
                unknown,
            };
        }
        TrunkChoice {
            trunk: t.default_trunk,
            by: if t.default_trunk.is_some() {
                TrunkBy::Default
            } else {
                TrunkBy::Nothing
            },
            unknown,
        }
    }

    pub fn trunk_by_name(&self, name: &str) -> Option<TrunkId> {
        self.trunk_by_name.get(name).copied()
    }

    pub(crate) fn trunk_by_did(&self, did: &str) -> Option<TrunkId> {
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
    pub(crate) fn select_trunk<'a>(
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
    pub(crate) fn choose_trunk<'a>(
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

    pub(crate) fn cond_active(&self, cond: ScheduleCond, at: DateTime<Utc>) -> bool {
        self.schedules[cond.schedule].1.is_open(at) == cond.inside
    }

    pub fn exclusive_active(&self, trunk: TrunkId, at: DateTime<Utc>) -> bool {
        match self.trunks[trunk].exclusive {
            Exclusive::Never => false,
            Exclusive::Always => true,
            Exclusive::When(c) => self.cond_active(c, at),
        }
    }

    pub(crate) fn schedule_name(&self, cond: ScheduleCond) -> &str {
        &self.schedules[cond.schedule].0
    }

    /// Actions every configuration has unless it defines its own of that name.
    pub(crate) const BUILTIN_ACTIONS: [&'static str; 3] = ["reject", "pass", "allow"];
}

//! Precedence: protected → system blacklist → the called user's allow list →
//! (numbers the user dialled, `policy::feature`) → their block list → trunk
//! whitelist → tenant whitelist → trunk blacklist → tenant blacklist →
//! exclusive mode → default allow. Within one list the higher `priority` wins,
//! then the more specific rule, then file order. Disabled / unscheduled rules
//! are skipped (and reported to the tester).

use std::cell::Cell;

use chrono::{DateTime, Utc};

use super::attest::{Attest, Attestation};
use super::index::{ListIndex, MatchError, MatchedOn, RuleId, Subject};
use super::number::Caller;
use super::reputation::CallerFacts;
use super::ruleset::{ActionId, RuleKind, RuleSet, TrunkId, UserId};
use crate::config::types::MatchType;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Block,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Block => "block",
        }
    }
}

/// The list whose rule (or mode) decided the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecidedBy {
    Protected,
    SystemBlacklist,
    UserAllow,
    /// The called user's own block list.
    UserBlock,
    /// The called user dialled the caller (`dialled_numbers`, `policy::feature`).
    Dialled,
    Whitelist,
    Blacklist,
    Exclusive,
    Default,
    /// A velocity rule: the caller (range, trunk) went over its rate, or is
    /// under a temporary block it earned.
    Velocity,
}

impl DecidedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Protected => "protected",
            DecidedBy::SystemBlacklist => "system_blacklist",
            DecidedBy::UserAllow => "user_allow",
            DecidedBy::UserBlock => "user_block",
            DecidedBy::Dialled => "dialled",
            DecidedBy::Whitelist => "whitelist",
            DecidedBy::Blacklist => "blacklist",
            DecidedBy::Exclusive => "exclusive",
            DecidedBy::Default => "default",
            DecidedBy::Velocity => "velocity",
        }
    }
}

/// The answer for one call: a plain value (names resolve through its rule set).
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub list: DecidedBy,
    pub trunk: TrunkId,
    pub rule: Option<RuleId>,
    pub action: ActionId,
    pub matched_on: Option<MatchedOn>,
    pub captures: Vec<(String, String)>,
    pub caller: Caller,
    pub exclusive_active: bool,
    /// The call's attestation, when the trunk's rules needed it.
    pub attestation: Option<Attestation>,
    /// The called user (of the trunk's tenant), when the call is for one.
    pub user: Option<UserId>,
}

/// A rule that matched but did not count, for `callguard test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub rule: RuleId,
    pub list: DecidedBy,
    pub why: SkipReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SkipReason {
    Disabled,
    /// Its `schedule:` condition does not hold now.
    ScheduleInactive,
    /// A higher list decided first.
    Shadowed,
    /// Its `attestation:` condition does not hold for this call.
    AttestationMismatch,
    /// Its `reputation:` / `category:` / `caller_name:` condition does not
    /// hold (or no lookup answered in time).
    ReputationMismatch,
}

impl Decision {
    pub fn rule_name<'a>(&self, rs: &'a RuleSet) -> Option<&'a str> {
        self.rule.map(|r| rs.rules.name(r))
    }

    pub fn action_name<'a>(&self, rs: &'a RuleSet) -> &'a str {
        &rs.action(self.action).name
    }

    /// The text the winning rule matched.
    pub(crate) fn matched_text(&self) -> Option<&str> {
        match self.matched_on? {
            MatchedOn::Raw => Some(&self.caller.raw),
            MatchedOn::E164 => self.caller.e164.as_deref(),
            MatchedOn::Anonymous => Some("Anonymous"),
            MatchedOn::Attestation => Some(&self.caller.raw),
        }
    }

    /// The winning rule's pattern and match type, as the user wrote them;
    /// a rule without a pattern is shown by its condition
    /// (`anonymous: true`, `attestation: [A, B]`, `velocity caller`).
    pub fn pattern(&self, rs: &RuleSet) -> Option<(String, &'static str)> {
        let r = self.rule?;
        match rs.rules.kind(r) {
            Some(RuleKind::Pattern(p, m)) => Some((p.to_string(), m.as_str())),
            Some(RuleKind::Anonymous) => Some(("anonymous: true".into(), "anonymous")),
            Some(RuleKind::Attestation(mask)) => {
                let levels: Vec<&str> = Attest::ALL
                    .iter()
                    .filter(|l| mask & l.bit() != 0)
                    .map(|l| l.as_str())
                    .collect();
                Some((
                    format!("attestation: [{}]", levels.join(", ")),
                    "attestation",
                ))
            }
            Some(RuleKind::Velocity(scope)) => {
                Some((format!("velocity {}", scope.as_string()), "exact"))
            }
            Some(RuleKind::Reputation) => Some((
                rs.rules
                    .reputation(r)
                    .map(|c| c.describe())
                    .unwrap_or_default(),
                "reputation",
            )),
            None => self.matched_text().map(|t| (t.to_string(), "exact")),
        }
    }

    /// ` (attestation A (verstat on P-Asserted-Identity))` when it was fetched.
    fn attested_note(&self) -> String {
        self.attestation
            .as_ref()
            .map_or_else(String::new, |a| format!(" ({a})"))
    }

    /// One line a human can act on.
    pub fn reason(&self, rs: &RuleSet) -> String {
        let trunk = &rs.trunk(self.trunk).name;
        let how = || {
            let (p, m) = self.pattern(rs).unwrap_or_default();
            let on = match self.matched_on {
                Some(MatchedOn::E164) => {
                    format!(" on E.164 {}", self.caller.e164.as_deref().unwrap_or(""))
                }
                Some(MatchedOn::Anonymous) => " (caller ID hidden)".to_string(),
                _ => String::new(),
            };
            // A rule shown by its condition needs no match type before it.
            let by_condition = matches!(
                self.rule.and_then(|r| rs.rules.kind(r)),
                Some(RuleKind::Anonymous | RuleKind::Attestation(_) | RuleKind::Reputation)
            );
            let what = if by_condition { p } else { format!("{m} {p}") };
            // A rule with an attestation condition says what the call had
            // and where it was read: `attestation C (verstat on P-Asserted-Identity)`.
            let attested = match (
                self.rule.and_then(|r| rs.rules.attestation(r)),
                &self.attestation,
            ) {
                (Some(_), Some(a)) => format!(", {a}"),
                (Some(_), None) => format!(", {}", Attestation::unsigned()),
                _ => String::new(),
            };
            // A pattern AND-ed with a reputation condition says both.
            let reputed = match self.rule.and_then(|r| rs.rules.reputation(r)) {
                Some(c) if !by_condition => format!(", {}", c.describe()),
                _ => String::new(),
            };
            format!(
                "{} ({what}{attested}{reputed}){on}",
                self.rule_name(rs).unwrap_or("?")
            )
        };
        match self.list {
            DecidedBy::Protected => format!("protected number {}: never blocked", how()),
            DecidedBy::SystemBlacklist => format!("system blacklist rule {}", how()),
            DecidedBy::UserAllow | DecidedBy::UserBlock => {
                let t = rs.trunk(self.trunk);
                let user = self.user.map_or("?", |u| &*rs.tenant(t.tenant).user(u).ext);
                let which = if self.list == DecidedBy::UserAllow {
                    "allow"
                } else {
                    "block"
                };
                format!("user {user}'s {which} list rule {}", how())
            }
            DecidedBy::Dialled => "the called user dialled this number".to_string(),
            DecidedBy::Whitelist => format!("whitelist rule {} on trunk {trunk}", how()),
            DecidedBy::Blacklist => format!("blacklist rule {} on trunk {trunk}", how()),
            // When the trunk's rules needed the call's attestation, the
            // reason says what it was, so an operator sees why a rule with an
            // `attestation:` condition did not apply.
            DecidedBy::Exclusive => format!(
                "trunk {trunk} is in exclusive mode and the caller is not whitelisted{}",
                self.attested_note()
            ),
            DecidedBy::Default => format!("no rule matched{}", self.attested_note()),
            DecidedBy::Velocity => match self.rule_name(rs) {
                Some(n) => format!("velocity rule {n} on trunk {trunk}"),
                None => format!("learned from challenges on trunk {trunk}"),
            },
        }
    }
}

/// Decides a call. `raw_caller` is the caller ID as the PBX sent it.
pub fn decide(
    rs: &RuleSet,
    trunk: TrunkId,
    raw_caller: &str,
    presentation_restricted: bool,
    at: DateTime<Utc>,
) -> Result<Decision, MatchError> {
    decide_observed(
        rs,
        (trunk, None),
        raw_caller,
        presentation_restricted,
        (None, CallerFacts::default()),
        at,
        |_| {},
    )
}

/// [`decide_attested`] for a call to `user` (of the trunk's tenant): their
/// allow and block lists come after the system blacklist, before the trunk's.
pub fn decide_for_user(
    rs: &RuleSet,
    trunk: TrunkId,
    user: Option<UserId>,
    raw_caller: &str,
    presentation_restricted: bool,
    attestation: Option<&Attestation>,
    at: DateTime<Utc>,
) -> Result<Decision, MatchError> {
    decide_observed(
        rs,
        (trunk, user),
        raw_caller,
        presentation_restricted,
        (attestation, CallerFacts::default()),
        at,
        |_| {},
    )
}

/// [`decide`] with the call's attestation (`None`: not fetched; rules with
/// an `attestation:` condition then see the call as unsigned).
pub fn decide_attested(
    rs: &RuleSet,
    trunk: TrunkId,
    raw_caller: &str,
    presentation_restricted: bool,
    attestation: Option<&Attestation>,
    at: DateTime<Utc>,
) -> Result<Decision, MatchError> {
    decide_screened(
        rs,
        (trunk, None),
        raw_caller,
        presentation_restricted,
        attestation,
        CallerFacts::default(),
        at,
    )
}

/// [`decide_attested`] with what else is known of the caller: the name the
/// PBX delivered and the reputation lookup's answer, for the rules with a
/// `reputation:`, `category:` or `caller_name:` condition.
pub fn decide_screened(
    rs: &RuleSet,
    trunk: (TrunkId, Option<UserId>),
    raw_caller: &str,
    presentation_restricted: bool,
    attestation: Option<&Attestation>,
    facts: CallerFacts<'_>,
    at: DateTime<Utc>,
) -> Result<Decision, MatchError> {
    decide_observed(
        rs,
        trunk,
        raw_caller,
        presentation_restricted,
        (attestation, facts),
        at,
        |_| {},
    )
}

/// [`decide_explained`] with the call's attestation (`callguard test --attestation C`).
pub(crate) fn decide_explained_attested(
    rs: &RuleSet,
    (trunk, user): (TrunkId, Option<UserId>),
    raw_caller: &str,
    presentation_restricted: bool,
    (attestation, facts): (Option<&Attestation>, CallerFacts<'_>),
    at: DateTime<Utc>,
) -> Result<(Decision, Vec<Skipped>), MatchError> {
    let mut skipped: Vec<Skipped> = Vec::new();
    let d = decide_observed(
        rs,
        (trunk, user),
        raw_caller,
        presentation_restricted,
        (attestation, facts),
        at,
        |s| {
            if !skipped.iter().any(|x| x.rule == s.rule) {
                skipped.push(s);
            }
        },
    )?;
    // Rules of lower lists that matched too, so the tester can say what lost.
    if d.list != DecidedBy::Default {
        let caller = &d.caller;
        let (subjects, n) = subjects(caller);
        for (by, index) in lists_of(rs, trunk, user).into_iter().flatten() {
            let _ = index.for_each_match(
                &subjects[..n],
                caller.anonymous,
                |_, _| true,
                |id, _| {
                    if Some(id) != d.rule && !skipped.iter().any(|x| x.rule == id) {
                        let why = if !rs.rules.enabled(id) {
                            SkipReason::Disabled
                        } else if rs
                            .rules
                            .schedule(id)
                            .is_some_and(|c| !rs.cond_active(c, at))
                        {
                            SkipReason::ScheduleInactive
                        } else if !attest_holds(rs, id, level(d.attestation.as_ref())) {
                            SkipReason::AttestationMismatch
                        } else if !reputation_holds(rs, id, &facts) {
                            SkipReason::ReputationMismatch
                        } else {
                            SkipReason::Shadowed
                        };
                        skipped.push(Skipped {
                            rule: id,
                            list: by,
                            why,
                        });
                    }
                },
            );
        }
    }
    Ok((d, skipped))
}

fn subjects(caller: &Caller) -> ([Subject<'_>; 3], usize) {
    let empty = Subject {
        text: "",
        key: None,
        on: MatchedOn::Raw,
    };
    let mut s = [empty; 3];
    let mut n = 0;
    if !caller.raw.is_empty() {
        s[n] = Subject::new(&caller.raw, MatchedOn::Raw);
        n += 1;
    }
    if let Some(e) = caller.e164.as_deref()
        && e != caller.raw
    {
        s[n] = Subject::new(e, MatchedOn::E164);
        n += 1;
    }
    if caller.anonymous && caller.raw != "Anonymous" {
        s[n] = Subject::new("Anonymous", MatchedOn::Anonymous);
        n += 1;
    }
    (s, n)
}

/// The lists of a call in precedence order (`None`: no user, no user list).
fn lists_of(
    rs: &RuleSet,
    trunk: TrunkId,
    user: Option<UserId>,
) -> [Option<(DecidedBy, &ListIndex)>; 8] {
    let t = rs.trunk(trunk);
    let tenant = rs.tenant(t.tenant);
    let user = user.and_then(|u| tenant.users.get(u));
    [
        Some((DecidedBy::Protected, &rs.protected)),
        Some((DecidedBy::SystemBlacklist, &rs.system)),
        user.map(|u| (DecidedBy::UserAllow, &u.allow)),
        user.map(|u| (DecidedBy::UserBlock, &u.block)),
        Some((DecidedBy::Whitelist, &t.whitelist)),
        Some((DecidedBy::Whitelist, &tenant.whitelist)),
        Some((DecidedBy::Blacklist, &t.blacklist)),
        Some((DecidedBy::Blacklist, &tenant.blacklist)),
    ]
}

fn decide_observed(
    rs: &RuleSet,
    (trunk, user): (TrunkId, Option<UserId>),
    raw_caller: &str,
    presentation_restricted: bool,
    (attestation, facts): (Option<&Attestation>, CallerFacts<'_>),
    at: DateTime<Utc>,
    mut on_skip: impl FnMut(Skipped),
) -> Result<Decision, MatchError> {
    let attest = level(attestation);
    let t = rs.trunk(trunk);
    let caller = t.dialing.normalize(raw_caller, presentation_restricted);
    let (subj, n) = subjects(&caller);
    let subj = &subj[..n];
    let lists = lists_of(rs, trunk, user);
    let exclusive_active = rs.exclusive_active(trunk, at);
    let mut decision = Decision {
        verdict: Verdict::Allow,
        list: DecidedBy::Default,
        trunk,
        rule: None,
        action: t.allowed_action,
        matched_on: None,
        captures: Vec::new(),
        caller: Caller {
            raw: String::new(),
            e164: None,
            anonymous: false,
        },
        exclusive_active,
        attestation: attestation.cloned(),
        user,
    };
    for (by, index) in lists.into_iter().flatten() {
        if index.is_empty() {
            continue;
        }
        if let Some((rule, on)) = best_match(
            rs,
            index,
            subj,
            caller.anonymous,
            (at, attest, &facts),
            by,
            &mut on_skip,
        )? {
            let (verdict, default_action) = match by {
                DecidedBy::Protected | DecidedBy::Whitelist | DecidedBy::UserAllow => {
                    (Verdict::Allow, t.allowed_action)
                }
                DecidedBy::SystemBlacklist => (Verdict::Block, rs.system_blocked_action),
                _ => (Verdict::Block, t.blocked_action),
            };
            let action = match by {
                DecidedBy::Protected => t.allowed_action,
                _ => rs.rules.action(rule).unwrap_or(default_action),
            };
            decision.verdict = verdict;
            decision.list = by;
            decision.rule = Some(rule);
            decision.action = action;
            decision.matched_on = Some(on);
            // Only regexes and wildcards have capture groups to report.
            if let Some((_, MatchType::Regex | MatchType::Wildcard)) = rs.rules.pattern(rule) {
                let text = match on {
                    MatchedOn::Raw => caller.raw.as_str(),
                    MatchedOn::E164 => caller.e164.as_deref().unwrap_or(""),
                    MatchedOn::Anonymous => "Anonymous",
                    MatchedOn::Attestation => "",
                };
                decision.captures = index.captures(rule, text);
            }
            decision.caller = caller;
            return Ok(decision);
        }
    }
    if exclusive_active {
        decision.verdict = Verdict::Block;
        decision.list = DecidedBy::Exclusive;
        decision.action = t.blocked_action;
    }
    decision.caller = caller;
    Ok(decision)
}

/// The best eligible rule of one list, without allocating.
fn best_match(
    rs: &RuleSet,
    index: &ListIndex,
    subjects: &[Subject<'_>],
    anonymous: bool,
    (at, attest, facts): (DateTime<Utc>, Attest, &CallerFacts<'_>),
    list: DecidedBy,
    on_skip: &mut impl FnMut(Skipped),
) -> Result<Option<(RuleId, MatchedOn)>, MatchError> {
    let rules = &rs.rules;
    // Lower key wins: higher priority, then more specific, then file order.
    let key = |id: RuleId| (-(rules.priority(id) as i64), rules.specificity(id), id);
    let best: Cell<Option<(RuleId, MatchedOn)>> = Cell::new(None);
    index.for_each_match(
        subjects,
        anonymous,
        // A group can win only if its best possible key is below the best's.
        |max_priority, spec| {
            best.get().is_none_or(|(b, _)| {
                (-(max_priority as i64), spec)
                    <= (-(rules.priority(b) as i64), rules.specificity(b))
            })
        },
        |id, on| {
            if !rules.enabled(id) {
                on_skip(Skipped {
                    rule: id,
                    list,
                    why: SkipReason::Disabled,
                });
                return;
            }
            if let Some(c) = rules.schedule(id)
                && !rs.cond_active(c, at)
            {
                on_skip(Skipped {
                    rule: id,
                    list,
                    why: SkipReason::ScheduleInactive,
                });
                return;
            }
            if !attest_holds(rs, id, attest) {
                on_skip(Skipped {
                    rule: id,
                    list,
                    why: SkipReason::AttestationMismatch,
                });
                return;
            }
            if !reputation_holds(rs, id, facts) {
                on_skip(Skipped {
                    rule: id,
                    list,
                    why: SkipReason::ReputationMismatch,
                });
                return;
            }
            if best.get().is_none_or(|(b, _)| key(id) < key(b)) {
                best.set(Some((id, on)));
            }
        },
    )?;
    Ok(best.get())
}

/// The level a decision uses: unsigned when none was fetched.
fn level(a: Option<&Attestation>) -> Attest {
    a.map_or(Attest::None, |a| a.level)
}

/// Whether rule `id`'s attestation condition (if any) holds for `level`.
fn attest_holds(rs: &RuleSet, id: RuleId, level: Attest) -> bool {
    rs.rules
        .attestation(id)
        .is_none_or(|mask| mask & level.bit() != 0)
}

/// Whether rule `id`'s reputation condition (if any) holds for the caller.
fn reputation_holds(rs: &RuleSet, id: RuleId, facts: &CallerFacts<'_>) -> bool {
    rs.rules.reputation(id).is_none_or(|c| c.holds(facts))
}

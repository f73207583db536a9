//! Velocity as policy around a decision: the trunk's velocity rules and
//! what was learned from challenges turn `decide`'s answer into the one the
//! call gets. The call flow only sequences: it calls [`apply`] after
//! `decide` and [`learn`] after a challenge, and counts what they report.
//!
//! Counters and blocks are the [`Tracker`]'s (which also persists blocks);
//! keys are typed ([`Key`]), and every action used here was resolved when
//! the rules were compiled.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::{Block, Budget, Key, Tracker, millis};
use crate::action::Learn;
use crate::config::types::ActionKind;
use crate::policy::RuleSet;
use crate::policy::decide::{DecidedBy, Decision, Verdict};
use crate::policy::ruleset::ActionId;

/// A decision after the velocity rules.
#[derive(Debug)]
pub(crate) struct Applied {
    pub decision: Decision,
    /// What to add to the decision's reason, when velocity changed it.
    pub note: Option<String>,
    /// The trunk and rule whose rate this call went over, for
    /// `callguard_velocity_blocks_total{trunk, rule}`.
    pub tripped: Option<(Arc<str>, Arc<str>)>,
}

impl Applied {
    fn unchanged(decision: Decision) -> Applied {
        Applied {
            decision,
            note: None,
            tripped: None,
        }
    }
}

/// Time as the log and the reasons write it.
fn stamp(t: DateTime<Utc>) -> impl std::fmt::Display {
    t.format("%Y-%m-%dT%H:%M:%SZ")
}

fn until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::days(1))
}

/// The decision `d` with velocity's verdict and action instead.
fn overruled(d: Decision, verdict: Verdict, rule: Option<u32>, action: ActionId) -> Decision {
    Decision {
        verdict,
        list: DecidedBy::Velocity,
        rule,
        action,
        matched_on: None,
        captures: Vec::new(),
        ..d
    }
}

/// The trunk's velocity rules around a decision: a caller (range, trunk)
/// under a temporary block, or over a rule's rate now, gets the rule's
/// action instead; a caller who kept failing challenges is blocked, one who
/// passed one is not challenged again. Protected numbers and whitelisted
/// callers are exempt (an operator's explicit trust). Every rule of the
/// trunk counts the call, also once one has decided.
pub(crate) async fn apply(
    tracker: &Tracker,
    rs: &RuleSet,
    d: Decision,
    now: DateTime<Utc>,
) -> Applied {
    if matches!(
        d.list,
        DecidedBy::Protected | DecidedBy::Whitelist | DecidedBy::UserAllow | DecidedBy::Dialled
    ) {
        return Applied::unchanged(d);
    }
    let t = rs.trunk(d.trunk);
    let caller = d.caller.e164.as_deref().unwrap_or(&d.caller.raw);
    if !d.caller.anonymous && !caller.is_empty() {
        // Learned from challenges: a caller who kept failing is blocked; a
        // verified human skips the challenge.
        if let Some(b) = tracker.active_block(&Key::LearnedBlock(caller.to_string()), now) {
            let note = format!(
                "{caller} is in {} until {} (failed challenges)",
                b.rule,
                stamp(b.until)
            );
            let d = overruled(d, Verdict::Block, None, t.blocked_action);
            return Applied {
                decision: d,
                note: Some(note),
                tripped: None,
            };
        }
        let challenged = matches!(rs.action(d.action).kind, ActionKind::Challenge);
        if challenged
            && let Some(b) = tracker.active_block(&Key::LearnedTrust(caller.to_string()), now)
        {
            let note = format!(
                "{caller} is in {} until {} (passed a challenge): not challenged again",
                b.rule,
                stamp(b.until)
            );
            let d = overruled(d, Verdict::Allow, None, t.velocity.trusted_action);
            return Applied {
                decision: d,
                note: Some(note),
                tripped: None,
            };
        }
    }
    let mut over: Option<(usize, String)> = None;
    let mut tripped = None;
    let now_ms = millis(now);
    let mut budget = Budget::default();
    for (i, v) in t.velocity.rules.iter().enumerate() {
        let Some(key) = v.counter_key(&t.name, &d.caller) else {
            continue;
        };
        let per_ms = v.per.as_millis() as i64;
        if over.is_some() {
            // Still count this call for the other rules.
            tracker
                .count_call(&key, now_ms, per_ms, v.max, &mut budget)
                .await;
            continue;
        }
        if let Some(b) = tracker.active_block(&key, now) {
            let note = format!(
                "{} is blocked until {} (temporary, {} calls within {})",
                b.subject,
                stamp(b.until),
                v.max + 1,
                humantime::format_duration(v.per)
            );
            over = Some((i, note));
            continue;
        }
        let n = tracker
            .count_call(&key, now_ms, per_ms, v.max, &mut budget)
            .await;
        if n > v.max {
            let subject = key.subject().to_string();
            tripped = Some((t.name.clone(), v.name.clone()));
            let mut note = format!(
                "{n} calls from {subject} within {} (max {})",
                humantime::format_duration(v.per),
                v.max
            );
            if let Some(block_for) = v.block_for {
                let until = until(now, block_for);
                note.push_str(&format!("; blocked until {}", stamp(until)));
                let block = Block {
                    key: key.to_string(),
                    trunk: t.name.to_string(),
                    rule: v.name.to_string(),
                    subject,
                    created: now,
                    until,
                };
                tracker.add_block(key, block);
            }
            over = Some((i, note));
        }
    }
    let Some((i, note)) = over else {
        return Applied::unchanged(d);
    };
    let v = &t.velocity.rules[i];
    Applied {
        decision: overruled(d, Verdict::Block, Some(v.rule), v.action),
        note: Some(note),
        tripped,
    }
}

/// Opt-in learning from a challenge of `action`: `fails` failures within
/// `per` put the caller in `add_failed_to` for `block_for`; a pass puts it
/// in `add_passed_to` (verified humans) for `trust_for`. The entries are
/// kept with the velocity blocks (same store, same expiry), named by the
/// list. `caller` is empty for a hidden caller: nothing to learn.
pub(crate) async fn learn(
    tracker: &Tracker,
    learn: &Learn,
    action: &Arc<str>,
    caller: &str,
    passed: bool,
    now: DateTime<Utc>,
) {
    if caller.is_empty() {
        return;
    }
    let put = |key: Key, list: &str, ttl: Duration| {
        let block = Block {
            key: key.to_string(),
            trunk: "*".into(),
            rule: list.to_string(),
            subject: caller.to_string(),
            created: now,
            until: until(now, ttl),
        };
        tracker.add_block(key, block);
    };
    if passed {
        if let Some(list) = &learn.add_passed_to {
            put(Key::LearnedTrust(caller.to_string()), list, learn.trust_for);
        }
        return;
    }
    let Some(list) = &learn.add_failed_to else {
        return;
    };
    let key = Key::LearnFails {
        action: action.clone(),
        caller: caller.to_string(),
    };
    let per_ms = learn.per.as_millis() as i64;
    let n = tracker
        .count_call(
            &key,
            millis(now),
            per_ms,
            learn.fails,
            &mut Budget::default(),
        )
        .await;
    if n >= learn.fails {
        put(Key::LearnedBlock(caller.to_string()), list, learn.block_for);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decide;

    const YAML: &str = r#"
default_trunk: support
trunks:
  support:
    whitelist:
      - { name: Boss, pattern: "+15559990000" }
    velocity:
      - { name: repeat-caller, scope: caller, max: 2, per: 10m, block_for: 1h }
"#;

    fn rules() -> RuleSet {
        let cfg = crate::config::load_str(YAML, std::path::Path::new("t.yaml")).unwrap();
        RuleSet::compile(&cfg).unwrap()
    }

    #[tokio::test]
    async fn over_the_rate_is_blocked_and_the_block_is_kept_by_its_key() {
        let rs = rules();
        let tracker = Tracker::new(100);
        let now = Utc::now();
        let call = async |caller: &str| {
            let d = decide(&rs, 0, caller, false, now).unwrap();
            apply(&tracker, &rs, d, now).await
        };
        for _ in 0..2 {
            let a = call("+15551112222").await;
            assert_eq!(
                (a.decision.list, a.note, a.tripped),
                (DecidedBy::Default, None, None)
            );
        }
        let a = call("+15551112222").await;
        assert_eq!(a.decision.verdict, Verdict::Block);
        assert_eq!(a.decision.list, DecidedBy::Velocity);
        assert_eq!(a.decision.rule_name(&rs), Some("repeat-caller"));
        let tripped = a.tripped.map(|(t, r)| (t.to_string(), r.to_string()));
        assert_eq!(tripped, Some(("support".into(), "repeat-caller".into())));
        assert!(
            a.note
                .unwrap()
                .starts_with("3 calls from +15551112222 within 10m (max 2); blocked until")
        );
        let blocks = tracker.blocks(now);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].key, "support|repeat-caller|+15551112222");
        // Under the block now, without counting past it.
        let a = call("+15551112222").await;
        assert_eq!((a.decision.list, a.tripped), (DecidedBy::Velocity, None));
        assert!(a.note.unwrap().contains("is blocked until"));
        // Another caller, and the whitelisted one, are not concerned.
        assert_eq!(call("+15553334444").await.decision.list, DecidedBy::Default);
        for _ in 0..5 {
            assert_eq!(
                call("+15559990000").await.decision.list,
                DecidedBy::Whitelist
            );
        }
    }

    #[tokio::test]
    async fn a_learned_block_applies_to_any_trunk_decision() {
        let rs = rules();
        let tracker = Tracker::new(100);
        let now = Utc::now();
        let learn_cfg = Learn {
            fails: 2,
            per: Duration::from_secs(600),
            add_failed_to: Some("robots".into()),
            block_for: Duration::from_secs(3600),
            add_passed_to: None,
            trust_for: Duration::from_secs(3600),
        };
        let action: Arc<str> = "captcha".into();
        learn(&tracker, &learn_cfg, &action, "+15557778888", false, now).await;
        assert!(tracker.blocks(now).is_empty(), "one failure is not enough");
        learn(&tracker, &learn_cfg, &action, "+15557778888", false, now).await;
        assert_eq!(tracker.blocks(now)[0].key, "learned-block|+15557778888");
        let d = decide(&rs, 0, "+15557778888", false, now).unwrap();
        let a = apply(&tracker, &rs, d, now).await;
        assert_eq!(
            (a.decision.verdict, a.decision.list),
            (Verdict::Block, DecidedBy::Velocity)
        );
        assert_eq!(a.decision.action, rs.trunk(0).blocked_action);
        assert!(a.note.unwrap().contains("is in robots until"));
        // Lifting it forgets the failures too: one more is not a block again.
        assert!(
            tracker
                .lift("learned-block|+15557778888")
                .unwrap()
                .is_some()
        );
        learn(&tracker, &learn_cfg, &action, "+15557778888", false, now).await;
        assert!(tracker.blocks(now).is_empty());
    }
}

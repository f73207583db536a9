//! Named actions of the config resolved into a [`Plan`] per PBX: the
//! per-PBX overrides applied, defaults filled in, required keys checked.
//! Pure: problems come back as text for the rule-set compiler to locate.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Cause, Challenge, EdgeStep, Learn, Pbx, Plan, Step, Tone};
use crate::config::types::{ActionConfig, ActionKind, ActionMode, CauseValue, Then};

/// The plans of action `name` for Asterisk and FreeSWITCH, and every
/// problem found (`` `sound:` is required for kind Play ``). `done` holds the
/// actions resolved so far, which `on_no_answer` and `then:` may name.
pub fn resolve(
    name: &str,
    c: &ActionConfig,
    done: &BTreeMap<String, [Arc<Plan>; 2]>,
) -> ([Arc<Plan>; 2], Vec<String>) {
    let mut errs: Vec<String> = Vec::new();
    let plan_for = |pbx: Pbx, errs: &mut Vec<String>| -> Plan {
        let o = match pbx {
            Pbx::Asterisk => c.asterisk.clone(),
            Pbx::FreeSwitch => c.freeswitch.clone(),
        }
        .unwrap_or_default();
        let pick =
            |over: &Option<String>, base: &Option<String>| over.clone().or_else(|| base.clone());
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
                    timeout: match &c.timeout {
                        None => 30,
                        Some(t) => t.millis().map_or_else(
                            |e| {
                                errs.push(format!("timeout: {e}"));
                                30
                            },
                            |ms| (ms / 1000).clamp(1, u64::from(u32::MAX)) as u32,
                        ),
                    },
                    on_no_answer,
                }
            }
            ActionKind::Challenge => challenge(c, &o, pbx, done, errs),
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
    if let Some(code) = c.sip_code {
        if c.kind != ActionKind::Reject {
            errs.push(format!(
                "sip_code {code}: only a reject refuses the call at the SIP edge (kind {:?} is handed on to the PBX)",
                c.kind
            ));
        } else if !(400..=699).contains(&code) {
            errs.push(format!(
                "sip_code {code}: a refusal is a SIP final code 400-699 (e.g. 486, 603)"
            ));
        }
    }
    // A problem of a shared key shows up for each PBX: say it once.
    let mut seen = std::collections::HashSet::new();
    errs.retain(|e| seen.insert(e.clone()));
    (plans, errs)
}

/// A `kind: challenge` for one PBX: its prompt, range, tries, timeout and
/// the actions after it (which must be resolved already: not challenges).
fn challenge(
    c: &ActionConfig,
    o: &crate::config::types::PbxOverride,
    pbx: Pbx,
    done: &BTreeMap<String, [Arc<Plan>; 2]>,
    errs: &mut Vec<String>,
) -> Step {
    let pick = |over: &Option<String>, base: &Option<String>| over.clone().or_else(|| base.clone());
    let (low, high) = match c.digits.as_deref() {
        None => (1, 9),
        Some(d) => parse_digit_range(d).unwrap_or_else(|e| {
            errs.push(format!("digits: {e}"));
            (1, 9)
        }),
    };
    let tries = c.tries.unwrap_or(2);
    if !(1..=10).contains(&tries) {
        errs.push(format!("tries: {tries}: use 1 to 10"));
    }
    let timeout_ms = match &c.timeout {
        None => 5_000,
        Some(t) => match t.millis() {
            Ok(ms) if (500..=60_000).contains(&ms) => ms as u32,
            Ok(ms) => {
                errs.push(format!("timeout: {ms} ms: use 500ms to 60s"));
                5_000
            }
            Err(e) => {
                errs.push(format!("timeout: {e}"));
                5_000
            }
        },
    };
    let mut then = |key: &str, name: &Option<String>| -> Option<Arc<Plan>> {
        let n = name.as_deref()?.trim();
        match done.get(n) {
            Some(p) if !matches!(p[pbx.index()].step, Step::Challenge(_)) => {
                Some(p[pbx.index()].clone())
            }
            _ => {
                errs.push(format!(
                    "{key}: no action named {n:?} (or it is itself a challenge)"
                ));
                None
            }
        }
    };
    let on_pass = then("on_pass", &c.on_pass);
    let on_fail = then("on_fail", &c.on_fail);
    let on_pass = on_pass.unwrap_or_else(|| builtin_plans("pass")[0].clone());
    let learn = c.learn.as_ref().map(|l| Learn {
        fails: l.fails.max(1),
        per: l.per,
        add_failed_to: l.add_failed_to.clone(),
        block_for: l.block_for,
        add_passed_to: l.add_passed_to.clone(),
        trust_for: l.trust_for,
    });
    Step::Challenge(Box::new(Challenge {
        prompt: need(pick(&o.prompt, &c.prompt), "prompt", c.kind, errs),
        digit_sound: o
            .digit_sound
            .clone()
            .unwrap_or_else(|| "digits/{digit}.wav".into()),
        invalid: pick(&o.invalid, &c.invalid),
        low,
        high,
        tries,
        timeout_ms,
        answer: c.answer.unwrap_or(true),
        on_pass,
        on_fail,
        learn,
    }))
}

/// `1-9`, `0-9`, `5`: the digits a challenge may ask for.
pub(crate) fn parse_digit_range(s: &str) -> Result<(u8, u8), String> {
    let digit = |t: &str| -> Result<u8, String> {
        match t.trim().as_bytes() {
            [d @ b'0'..=b'9'] => Ok(d - b'0'),
            _ => Err(format!("{s:?}: use one digit or a range such as 1-9")),
        }
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (digit(a)?, digit(b)?),
        None => {
            let d = digit(s)?;
            (d, d)
        }
    };
    if lo > hi {
        return Err(format!("{s:?}: the range runs low to high (1-9)"));
    }
    Ok((lo, hi))
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

/// What the SIP edge does with action `c` (see [`EdgeStep`]): from the
/// action's own keys, without the `asterisk:` / `freeswitch:` overrides,
/// which name PBX features the edge does not have. `None`: a built-in action
/// (`reject`, `pass`, `allow`): `reject` refuses with 486.
pub(crate) fn edge_step(c: Option<&ActionConfig>, name: &str) -> EdgeStep {
    let Some(c) = c else {
        return match name {
            "reject" => EdgeStep::Refuse { code: 486 },
            _ => EdgeStep::Pass,
        };
    };
    if c.mode == ActionMode::Advise {
        // Advise sets variables for the PBX's dialplan to act on.
        return EdgeStep::HandOn;
    }
    match c.kind {
        ActionKind::Reject => {
            let code = c
                .sip_code
                .filter(|n| (400..=699).contains(n))
                .unwrap_or_else(|| match c.tone.as_deref().unwrap_or("busy") {
                    "congestion" => 503,
                    "hangup" => {
                        let cause = match &c.cause {
                            Some(CauseValue::Code(n)) => Cause::parse(&n.to_string()),
                            Some(CauseValue::Name(n)) => Cause::parse(n),
                            None => Some(Cause::CALL_REJECTED),
                        };
                        EdgeStep::code_for_cause(cause.unwrap_or(Cause::CALL_REJECTED))
                    }
                    _ => 486,
                });
            EdgeStep::Refuse { code }
        }
        ActionKind::Continue => EdgeStep::Pass,
        ActionKind::Play
        | ActionKind::Voicemail
        | ActionKind::Transfer
        | ActionKind::WhisperBridge
        | ActionKind::Challenge => EdgeStep::HandOn,
    }
}

/// The plans of a built-in action (`reject`, `pass`, `allow`).
pub(crate) fn builtin_plans(name: &str) -> [Arc<Plan>; 2] {
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

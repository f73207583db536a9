//! Named actions of the config resolved into a [`Plan`] per PBX: the
//! per-PBX overrides applied, defaults filled in, required keys checked.
//! Pure: problems come back as text for the rule-set compiler to locate.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Cause, Pbx, Plan, Step, Tone};
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
    (plans, errs)
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

/// The plans of a built-in action (`reject`, `pass`, `allow`).
pub fn builtin_plans(name: &str) -> [Arc<Plan>; 2] {
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

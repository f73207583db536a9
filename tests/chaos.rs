//! The chaos harness over the shipped process (issue 19): the built
//! `callguard serve` on the shipped `config/callguard.yaml` and its lists,
//! with PBX peers that close, reset or stall at every step of every kind of
//! session.
//!
//! The steps are generated: each action of the shipped file, on each PBX and
//! with each of the PBX's answers (`support/chaos.rs`), is played once through
//! a relay (`support/relay.rs`) and every message that crossed is a cut
//! point — a partial environment, after each command of the action's recipe
//! and each attestation read, before the connect reply, after each `sendmsg`,
//! during linger. A new action, or a new command in a recipe, is a new cut
//! point without editing this file.
//!
//! After each close and reset the process must be alive and the next call of
//! the same kind screened exactly as before; the stalls all run at once,
//! while those cuts run, and each must be ended by the service's own
//! timeouts unless its command lasts the call (Dial, VoiceMail, bridge).
//! At the end no row of the decision log is half-written, every call that
//! was decided has its row, and no file descriptor was leaked.

use callguard_sim::asterisk;
#[path = "support/chaos.rs"]
mod chaos;
use callguard_sim::freeswitch;
#[path = "support/relay.rs"]
mod relay;
#[path = "support/server.rs"]
mod server;
#[path = "support/shipped.rs"]
mod shipped;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use callguard::action::Pbx;
use chaos::Scenario;
use futures::StreamExt;
use relay::{Cut, Dir, Fault, Relayed};
use shipped::Shipped;

/// Longer than any bound the shipped config puts on a silent peer: the
/// 30 s reply timeout, twice over with the key timeout for a FreeSWITCH
/// challenge's two tries.
const STALL_LIMIT: Duration = Duration::from_secs(80);

/// One scenario with its reference commands and its cut points.
#[derive(Clone)]
struct Plan {
    scenario: Scenario,
    reference: chaos::Seen,
    cuts: Vec<Cut>,
}

fn service(shipped: &Shipped, pbx: Pbx) -> SocketAddr {
    match pbx {
        Pbx::Asterisk => shipped.proc.agi.expect("agi listener"),
        Pbx::FreeSwitch => shipped.proc.esl.expect("esl listener"),
    }
}

/// Plays each scenario directly and through the relay: both must be screened
/// by its rule with the same commands (the relay is transparent); the
/// relayed messages are the cut points.
async fn record(shipped: &Shipped, scenarios: &[Scenario]) -> Vec<Plan> {
    let mut plans = Vec::new();
    for s in scenarios {
        let addr = service(shipped, s.pbx);
        let direct = chaos::reference(s, addr).await;
        let (seen, relayed) = chaos::play_relayed(s, addr, None, STALL_LIMIT).await;
        assert!(relayed.error.is_none(), "{}: {:?}", s.name(), relayed.error);
        chaos::screened(s, &seen, &direct).unwrap();
        plans.push(Plan {
            scenario: s.clone(),
            reference: direct,
            cuts: chaos::cuts(&relayed),
        });
    }
    plans
}

/// Whether the service sent its variables before the cut: the call was
/// decided, so the log must hold its row.
fn decided(r: &Relayed) -> bool {
    r.messages.iter().any(|m| {
        m.dir == Dir::Down && {
            let text = String::from_utf8_lossy(&m.bytes).to_ascii_lowercase();
            text.contains("callguard_verdict")
        }
    })
}

/// A command the service rightly waits on for the length of the call.
fn lasts_the_call(command: &str) -> bool {
    let c = command.to_ascii_lowercase();
    c.starts_with("exec dial ")
        || c.starts_with("exec voicemail ")
        || c.contains("execute-app-name: bridge\n")
        || c.contains("execute-app-name: voicemail\n")
}

struct Outcome {
    step: String,
    relayed: Relayed,
    chaos_uid: String,
    probe: Option<(String, Result<(), String>)>,
}

/// One close or reset: the cut call, then a probe call of the same scenario.
async fn cut_then_probe(plan: Plan, cut: Cut, addr: SocketAddr) -> Outcome {
    let s = &plan.scenario;
    let (seen, relayed) = chaos::play_relayed(s, addr, Some(cut), STALL_LIMIT).await;
    let probe = chaos::play(s, addr).await;
    let verdict = chaos::screened(s, &probe, &plan.reference);
    Outcome {
        step: format!("{} {cut:?}", s.name()),
        relayed,
        chaos_uid: seen.unique_id,
        probe: Some((probe.unique_id, verdict)),
    }
}

/// Runs every cut of `plans` against `shipped`: the stalls all at once, the
/// closes and resets `parallel` at a time with a probe after each. Returns
/// the problems found.
async fn run_cuts(shipped: &mut Shipped, plans: &[Plan], parallel: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let mut stalls = Vec::new();
    let mut quick = Vec::new();
    for plan in plans {
        let addr = service(shipped, plan.scenario.pbx);
        for &cut in &plan.cuts {
            if cut.fault == Fault::Stall {
                let plan = plan.clone();
                stalls.push(tokio::spawn(async move {
                    let s = &plan.scenario;
                    let (seen, r) = chaos::play_relayed(s, addr, Some(cut), STALL_LIMIT).await;
                    Outcome {
                        step: format!("{} {cut:?}", s.name()),
                        relayed: r,
                        chaos_uid: seen.unique_id,
                        probe: None,
                    }
                }));
            } else {
                quick.push(cut_then_probe(plan.clone(), cut, addr));
            }
        }
    }
    let (n_stall, n_quick) = (stalls.len(), quick.len());
    println!(
        "chaos: {} cut points over {} scenarios ({n_quick} closes and resets, {n_stall} stalls)",
        n_stall + n_quick,
        plans.len()
    );
    let mut outcomes = Vec::new();
    let mut quick = futures::stream::iter(quick).buffer_unordered(parallel);
    while let Some(o) = quick.next().await {
        shipped.assert_alive(&o.step);
        outcomes.push(o);
    }
    // Calls are screened while every stalled peer still holds its session.
    for plan in plans {
        let s = &plan.scenario;
        let seen = chaos::play(s, service(shipped, s.pbx)).await;
        if let Err(e) = chaos::screened(s, &seen, &plan.reference) {
            problems.push(format!("while peers stall: {e}"));
        }
    }
    for stall in stalls {
        let o = stall.await.expect("stall task");
        shipped.assert_alive(&o.step);
        let held = o.relayed.cut_fired && o.relayed.stall_ended_after.is_none();
        let last = chaos::last_command(&o.relayed).unwrap_or_default();
        if held && !lasts_the_call(&last) {
            problems.push(format!(
                "{}: the service held a silent peer past {STALL_LIMIT:?} (last command {:?})",
                o.step,
                last.lines().next().unwrap_or_default()
            ));
        }
        outcomes.push(o);
    }
    shipped.assert_alive("the stalls");
    problems.extend(check_log(shipped, &outcomes).await);
    problems
}

/// The decision log once every session has ended: no row without its end,
/// a row for every probe (its action) and for every cut call that was decided.
async fn check_log(shipped: &Shipped, outcomes: &[Outcome]) -> Vec<String> {
    let mut problems = Vec::new();
    let http = shipped.proc.http.expect("http listener");
    if !shipped::settle(http, Duration::from_secs(30)).await {
        problems.push("sessions still open after every peer left".into());
    }
    // The writer commits within its linger (50 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = shipped.log_rows();
    let by_uid: HashMap<&str, (&str, Option<&str>)> = rows
        .iter()
        .map(|(u, a, e)| (u.as_str(), (a.as_str(), e.as_deref())))
        .collect();
    let open: Vec<&String> = rows
        .iter()
        .filter(|(_, _, end)| end.is_none())
        .map(|(u, _, _)| u)
        .collect();
    if !open.is_empty() {
        problems.push(format!(
            "{} rows without an end: {:?}",
            open.len(),
            &open[..open.len().min(5)]
        ));
    }
    for o in outcomes {
        if let Some((uid, Ok(()))) = &o.probe {
            match by_uid.get(uid.as_str()) {
                Some((_, Some(_))) => {}
                other => problems.push(format!("{}: probe {uid} logged as {other:?}", o.step)),
            }
        }
        if let Some((_, Err(e))) = &o.probe {
            problems.push(format!("after {}: {e}", o.step));
        }
        if decided(&o.relayed) && !by_uid.contains_key(o.chaos_uid.as_str()) {
            problems.push(format!("{}: decided but not logged", o.step));
        }
    }
    problems
}

fn report(problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problems, the first ones:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pbx_peer_stops_the_shipped_service() {
    let mut shipped = shipped::spawn(None);
    let scenarios = chaos::scenarios(&shipped);
    let plans = record(&shipped, &scenarios).await;
    let fds = shipped.open_fds();
    let problems = run_cuts(&mut shipped, &plans, 4).await;
    report(&problems);
    let after = shipped.open_fds();
    assert!(after <= fds + 8, "descriptors: {fds} before, {after} after");
    assert!(shipped.panics().is_empty(), "{:?}", shipped.panics());
}

/// Part of the harness under `ulimit -n 128`: the first action on each PBX,
/// every cut, so the stalls hold a good part of the descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pbx_peer_stops_the_service_at_a_low_fd_limit() {
    let mut shipped = shipped::spawn(Some(128));
    let first = shipped.actions[0].0.clone();
    let scenarios: Vec<Scenario> = chaos::scenarios(&shipped)
        .into_iter()
        .filter(|s| s.action == first && s.variant == chaos::Variant::Plain)
        .collect();
    assert_eq!(scenarios.len(), 2);
    let plans = record(&shipped, &scenarios).await;
    let problems = run_cuts(&mut shipped, &plans, 2).await;
    report(&problems);
    assert!(shipped.panics().is_empty(), "{:?}", shipped.panics());
}

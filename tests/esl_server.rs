//! The outbound Event Socket server, driven by a FreeSWITCH simulator that
//! sends the bytes of the real FreeSWITCH 1.10 captures, over loopback TCP.

use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use freeswitch::{BridgeOutcome, HangupAt, Injection, SimConfig, SimResult};
use server::SCREEN_YAML;

/// Each command after `connect`, as `app arg` for executes, `hangup CAUSE`
/// for hangups, and the command line otherwise.
fn ops(r: &SimResult) -> Vec<String> {
    r.commands
        .iter()
        .map(|c| match c.header("call-command") {
            Some("execute") => format!(
                "{} {}",
                c.header("execute-app-name").unwrap_or("?"),
                c.header("execute-app-arg").unwrap_or("")
            ),
            Some("hangup") => format!("hangup {}", c.header("hangup-cause").unwrap_or("")),
            _ => c.line.clone(),
        })
        .collect()
}

/// The operations after the one `multiset` of the five callguard variables.
fn actions(r: &SimResult) -> Vec<String> {
    let all = ops(r);
    assert_eq!(all[0], "myevents", "{all:?}");
    assert_eq!(all[1], "linger 5", "{all:?}");
    let multiset = &all[2];
    assert!(
        multiset.starts_with("multiset ^^|callguard_verdict="),
        "{all:?}"
    );
    let mut at = 0;
    for name in ["verdict", "action", "rule", "list", "reason"] {
        at += multiset[at..]
            .find(&format!("callguard_{name}="))
            .unwrap_or_else(|| panic!("{name} missing or out of order in {multiset:?}"));
    }
    all[3..].to_vec()
}

fn sim(caller: &str) -> SimConfig {
    SimConfig {
        caller_number: caller.into(),
        ..SimConfig::default()
    }
}

#[tokio::test]
async fn each_action_has_its_exact_sendmsg_sequence() {
    let mut srv = server::start(SCREEN_YAML).await;
    let cases: &[(&str, &[&str])] = &[
        // `respond` with a final status ends the channel: no exit follows.
        ("+15550000001", &["respond 486 Busy Here"]),
        ("+15550000002", &["respond 503 Service Unavailable"]),
        ("+15550000003", &["hangup CALL_REJECTED"]),
        (
            "+15550000004",
            &[
                "answer ",
                "playback ivr/ivr-call_rejected.wav",
                "hangup NORMAL_CLEARING",
            ],
        ),
        (
            "+15550000005",
            &["playback custom/blocked", "hangup NORMAL_CLEARING"],
        ),
        (
            "+15550000006",
            &["answer ", "playback custom/notice", "exit"],
        ),
        (
            "+15550000007",
            &[
                "answer ",
                "voicemail default example.com 100",
                "hangup NORMAL_CLEARING",
            ],
        ),
        ("+15550000008", &["transfer s XML ivr-main", "exit"]),
        (
            "+15551234567",
            &[
                "bridge %[continue_on_fail=true,hangup_after_bridge=false]{originate_timeout=30,group_confirm_key=exec,group_confirm_file='playback tone_stream://%(200,0,800)'}user/1000",
                // The bridge ended: the call is over (not handed back).
                "hangup NORMAL_CLEARING",
            ],
        ),
        ("+15550000009", &["exit"]),
        ("+15557654321", &["exit"]),
    ];
    for (caller, expected) in cases {
        let r = sim(caller).run(srv.esl()).await;
        assert!(r.error.is_none() && !r.timed_out, "{caller}: {r:?}");
        assert_eq!(actions(&r), *expected, "{caller}");
        assert!(r.server_closed, "{caller}: socket left open");
    }
    // Variables for the dialplan, always.
    let r = sim("+15550000001").run(srv.esl()).await;
    assert_eq!(r.variable("callguard_verdict"), Some("block"));
    assert_eq!(r.variable("callguard_action"), Some("reject"));
    assert_eq!(r.variable("callguard_rule"), Some("Busy"));
    assert_eq!(r.variable("callguard_list"), Some("blacklist"));
    assert!(r.variable("callguard_reason").unwrap().contains("Busy"));
    let r = sim("+15557654321").run(srv.esl()).await;
    assert_eq!(r.variable("callguard_verdict"), Some("allow"));
    assert_eq!(r.variable("callguard_list"), Some("default"));
    srv.stop().await;
}

#[tokio::test]
async fn unanswered_vip_bridge_falls_back_to_voicemail() {
    let mut srv = server::start(SCREEN_YAML).await;
    let r = SimConfig {
        caller_number: "+15551234567".into(),
        bridge: BridgeOutcome::Unanswered {
            cause: "NO_ANSWER".into(),
        },
        interleave_foreign_events: true,
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    let a = actions(&r);
    assert!(a[0].starts_with("bridge "), "{a:?}");
    assert_eq!(
        a[1..],
        [
            "answer ",
            "voicemail default example.com 100",
            "hangup NORMAL_CLEARING"
        ],
        "{a:?}"
    );
    srv.stop().await;
}

/// Real FreeSWITCH hangs the caller up after a failed originate unless
/// `continue_on_fail` is set, for every cause but NO_ANSWER (the simulator
/// does the same): a busy or unknown agent must still lead to `on_no_answer`,
/// or, without it, back into the dialplan — never to a dropped VIP.
#[tokio::test]
async fn busy_or_missing_agent_still_runs_on_no_answer_or_continues() {
    let with_fallback = SCREEN_YAML;
    let without = SCREEN_YAML.replace(", on_no_answer: vm,", ",");
    for (yaml, then) in [
        (
            with_fallback.to_string(),
            &[
                "answer ",
                "voicemail default example.com 100",
                "hangup NORMAL_CLEARING",
            ][..],
        ),
        (without, &["exit"][..]),
    ] {
        let mut srv = server::start(&yaml).await;
        for cause in ["USER_BUSY", "SUBSCRIBER_ABSENT", "CHAN_NOT_IMPLEMENTED"] {
            let r = SimConfig {
                caller_number: "+15551234567".into(),
                bridge: BridgeOutcome::Unanswered {
                    cause: cause.into(),
                },
                ..SimConfig::default()
            }
            .run(srv.esl())
            .await;
            let a = actions(&r);
            assert!(
                a[0].starts_with("bridge %[continue_on_fail=true,"),
                "{cause}: {a:?}"
            );
            assert_eq!(a[1..], *then, "{cause}: {a:?}");
            assert_eq!(
                r.hangup_cause.as_deref(),
                then.last().and_then(|l| l.strip_prefix("hangup ")),
                "{cause}"
            );
        }
        srv.stop().await;
    }
}

#[tokio::test]
async fn anonymous_and_privacy_callers() {
    let mut srv = server::start(SCREEN_YAML).await;
    for (number, hide) in [("anonymous", false), ("", false), ("+15557654321", true)] {
        let r = SimConfig {
            caller_number: number.into(),
            hide_number: hide,
            ..SimConfig::default()
        }
        .run(srv.esl())
        .await;
        assert_eq!(
            r.variable("callguard_rule"),
            Some("Hidden"),
            "{number:?} hide={hide}"
        );
        assert_eq!(
            actions(&r)[..2],
            ["answer ", "playback ivr/ivr-call_rejected.wav"]
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn trunk_by_variable_and_by_did() {
    let mut srv = server::start(SCREEN_YAML).await;
    // No callguard_trunk variable: the DID selects the exclusive VIP line.
    let r = SimConfig {
        caller_number: "+15557654321".into(),
        destination_number: "+18005550199".into(),
        variables: vec![],
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_list"), Some("exclusive"));
    // The variable wins over the DID.
    let r = SimConfig {
        caller_number: "+15557654321".into(),
        destination_number: "+18005550199".into(),
        variables: vec![("callguard_trunk".into(), "support".into())],
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_list"), Some("default"));
    srv.stop().await;
}

#[tokio::test]
async fn percent_encoded_values_are_decoded() {
    let mut srv = server::start(SCREEN_YAML).await;
    // The simulator encodes `+` as %2B and `@` as %40, empty as _undef_.
    let r = SimConfig {
        caller_number: "+442071234567".into(),
        caller_name: "Smith@Example Ltd".into(),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_rule"), Some("UK"));
    let r = SimConfig {
        caller_number: "".into(),
        caller_name: "".into(),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_rule"), Some("Hidden"));
    srv.stop().await;
}

#[tokio::test]
async fn frames_split_byte_by_byte_or_coalesced() {
    let mut srv = server::start(SCREEN_YAML).await;
    for (split, coalesce) in [(true, false), (false, true)] {
        let r = SimConfig {
            caller_number: "+15550000004".into(),
            split_bytes: split,
            coalesce,
            interleave_foreign_events: true,
            ..SimConfig::default()
        }
        .run(srv.esl())
        .await;
        assert_eq!(
            actions(&r),
            [
                "answer ",
                "playback ivr/ivr-call_rejected.wav",
                "hangup NORMAL_CLEARING"
            ],
            "split={split} coalesce={coalesce}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn hangup_during_playback_and_during_bridge_ends_cleanly() {
    let mut srv = server::start(SCREEN_YAML).await;
    for (caller, app, before) in [
        ("+15550000004", "playback", 1),
        ("+15551234567", "bridge", 0),
    ] {
        let r = SimConfig {
            caller_number: caller.into(),
            hangup_at: Some(HangupAt::DuringExecute {
                app: app.into(),
                nth: 1,
                cause: "ORIGINATOR_CANCEL".into(),
            }),
            ..SimConfig::default()
        }
        .run(srv.esl())
        .await;
        let a = actions(&r);
        // Nothing is sent after the hangup: no hangup of our own, no exit
        // (the message is answered first: `answer` comes before playback).
        assert_eq!(a.len(), before + 1, "{app}: {a:?}");
        assert!(a[before].starts_with(app), "{app}: {a:?}");
        assert!(r.server_closed, "{app}: socket left open");
    }
    // A hangup right after the first reply: the session still closes.
    let r = SimConfig {
        caller_number: "+15557654321".into(),
        hangup_at: Some(HangupAt::AfterFirstReply {
            cause: "NORMAL_CLEARING".into(),
        }),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert!(r.server_closed);
    srv.stop().await;
}

#[tokio::test]
async fn unknown_content_type_is_skipped_and_oversized_body_closes() {
    let mut srv = server::start(SCREEN_YAML).await;
    let r = SimConfig {
        caller_number: "+15550000001".into(),
        injections: vec![Injection::UnknownContentType],
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(actions(&r), ["respond 486 Busy Here"]);
    let r = SimConfig {
        caller_number: "+15550000001".into(),
        injections: vec![Injection::OversizedBody(2 << 20)],
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert!(
        r.server_closed,
        "a peer sending an oversized body is disconnected"
    );
    let m = srv.running().state.metrics.render();
    assert!(
        m.contains("callguard_protocol_errors_total{kind=\"protocol\",pbx=\"freeswitch\"}"),
        "{m}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_peer_that_never_answers_connect_is_closed_by_the_timeout() {
    let yaml = format!("{SCREEN_YAML}\nesl: {{ connect_timeout: 200ms }}\n");
    let mut srv = server::start(&yaml).await;
    let r = SimConfig {
        send_connect_reply: false,
        overall_timeout: Duration::from_secs(5),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert!(r.connect_received);
    assert!(r.server_closed, "{r:?}");
    assert!(
        !r.timed_out,
        "the server, not the simulator, must give up first"
    );
    srv.stop().await;
}

use server::BROKEN_REGEX;

#[tokio::test]
async fn decision_error_or_timeout_fails_open() {
    let mut srv = server::start(BROKEN_REGEX).await;
    let r = sim("+442071234567").run(srv.esl()).await;
    // Every variable a decided call gets, in the same order, plus error: one multiset.
    let o = ops(&r);
    assert!(
        o[2].starts_with(
            "multiset ^^|callguard_verdict=allow|callguard_action=pass|callguard_rule=|\
             callguard_list=|callguard_reason=fail open: "
        ),
        "{o:?}"
    );
    assert!(o[2].ends_with("|callguard_error=error"), "{o:?}");
    assert_eq!(o[3..], ["exit"]);
    assert_eq!(r.variable("callguard_error"), Some("error"));
    srv.stop().await;

    // The one-variable-per-command form, for a PBX without multiset.
    let mut srv = server::start(&format!(
        "{BROKEN_REGEX}\nesl: {{ set_vars: per_variable }}\n"
    ))
    .await;
    let r = sim("+442071234567").run(srv.esl()).await;
    let o = ops(&r);
    assert_eq!(
        o[2..6],
        [
            "set callguard_verdict=allow",
            "set callguard_action=pass",
            "set callguard_rule=",
            "set callguard_list=",
        ]
    );
    assert!(
        o[6].starts_with("set callguard_reason=fail open: "),
        "{o:?}"
    );
    assert_eq!(o[7..], ["set callguard_error=error", "exit"]);
    srv.stop().await;

    let mut srv = server::start_slow_decisions("esl: { decide_timeout: 1ms }").await;
    let r = sim("+15550000001").run(srv.esl()).await;
    assert_eq!(r.variable("callguard_verdict"), Some("allow"));
    assert_eq!(r.variable("callguard_error"), Some("timeout"));
    assert_eq!(r.variable("callguard_rule"), Some(""));
    assert_eq!(r.variable("callguard_list"), Some(""));
    assert_eq!(
        r.variable("callguard_reason"),
        Some("fail open: no decision within 1ms")
    );
    assert_eq!(actions_after_vars(&r, 1), ["exit"]);
    let m = srv.running().state.metrics.render();
    assert!(
        m.contains("callguard_fail_open_total{pbx=\"freeswitch\",reason=\"timeout\"} 1"),
        "{m}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn fail_closed_applies_the_blocked_action() {
    let mut srv = server::start(&format!("{BROKEN_REGEX}\nfail: closed\n")).await;
    let r = sim("+442071234567").run(srv.esl()).await;
    assert_eq!(r.variable("callguard_verdict"), Some("block"));
    assert_eq!(r.variable("callguard_error"), Some("error"));
    assert_eq!(r.variable("callguard_rule"), Some(""));
    assert_eq!(r.variable("callguard_list"), Some(""));
    assert!(
        r.variable("callguard_reason")
            .is_some_and(|v| v.starts_with("fail closed: "))
    );
    assert_eq!(actions_after_vars(&r, 1), ["respond 486 Busy Here"]);
    srv.stop().await;
}

/// The operations after `commands` commands that set the variables.
fn actions_after_vars(r: &SimResult, commands: usize) -> Vec<String> {
    ops(r)[2 + commands..].to_vec()
}

/// Issue 10.7: `callguard_trunk=nosuch` is counted and explained.
#[tokio::test]
async fn unknown_trunk_variable_is_counted_and_explained() {
    let mut srv = server::start(SCREEN_YAML).await;
    let r = SimConfig {
        caller_number: "+15557654321".into(),
        destination_number: "+18005550100".into(),
        variables: vec![("callguard_trunk".into(), "nosuch".into())],
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert_eq!(r.variable("callguard_list"), Some("default"));
    let reason = r
        .variable("callguard_reason")
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains(
            "named by the dialplan does not exist; trunk support chosen by DID +18005550100"
        ),
        "{reason}"
    );
    let n = server::scrape_sum(
        srv.http(),
        "callguard_unknown_trunk_total",
        &["pbx=\"freeswitch\""],
    )
    .await;
    assert_eq!(n, 1.0);
    srv.stop().await;
}

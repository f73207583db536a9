//! `kind: challenge` ("press N to be connected") on both PBXs: the exact
//! commands, the digit keyed in by the simulated caller (Asterisk: the reply
//! codes of STREAM FILE / SAY DIGITS / WAIT FOR DIGIT; FreeSWITCH: the
//! variables play_and_get_digits leaves in its CHANNEL_EXECUTE_COMPLETE), the
//! action after it, the log's end state and `callguard_challenges_total`.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use asterisk::{AsteriskSim, Dtmf, HangupStyle, starts_with};
use freeswitch::SimConfig;
use serde_json::Value;

const YAML: &str = r#"
default_trunk: support
actions:
  robot-check:
    kind: challenge
    prompt: custom/press
    invalid: custom/wrong-key
    digits: 1-9
    tries: 2
    timeout: 5s
    freeswitch: { prompt: "ivr/ivr-please_press.wav" }
  check-then-vm:
    kind: challenge
    prompt: custom/press
    tries: 1
    timeout: 3s
    answer: false
    on_pass: vm
    on_fail: refuse
  learning-check:
    kind: challenge
    prompt: custom/press
    tries: 1
    learn: { fails: 2, per: 1h, add_failed_to: robots, block_for: 1d, add_passed_to: humans, trust_for: 30d }
  vm:     { kind: voicemail, mailbox: "100@default", freeswitch: { mailbox: "default example.com 100" } }
  refuse: { kind: reject, tone: hangup, cause: 21 }
trunks:
  support:
    dids: ["+18005550100"]
    blocked_action: reject
    blacklist:
      - { name: Robots, pattern: "+1555000*", action: robot-check }
      - { name: Early, pattern: "+15550009999", action: check-then-vm }
      - { name: Learn, pattern: "+1555111*", action: learning-check }
  screened:
    dids: ["+18005550111"]
    allowed_action: robot-check
"#;

async fn calls(http: std::net::SocketAddr) -> Value {
    reqwest::get(format!("http://{http}/api/v1/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn end_of(v: &Value, uid: &str) -> String {
    v.as_array()
        .unwrap()
        .iter()
        .find(|c| c["unique_id"] == uid)
        .and_then(|c| c["end_state"].as_str())
        .unwrap_or_else(|| panic!("no end state for {uid} in {v}"))
        .to_string()
}

/// The commands after the first `EXEC MSet` (the five CALLGUARD_* variables).
fn after_vars(commands: &[String]) -> Vec<String> {
    assert!(commands[0].starts_with("EXEC MSet "), "{commands:?}");
    commands[1..].to_vec()
}

/// The digit the server asked for, from its `SAY DIGITS` line.
fn said(commands: &[String]) -> String {
    let line = commands
        .iter()
        .find(|c| c.starts_with("SAY DIGITS "))
        .expect("SAY DIGITS sent");
    let d = line.split(' ').nth(2).unwrap().to_string();
    assert!(
        d.len() == 1 && ("1"..="9").contains(&d.as_str()),
        "digit {d}"
    );
    d
}

#[tokio::test]
async fn asterisk_caller_keys_the_digit_and_goes_on_into_the_dialplan() {
    let mut srv = server::start(YAML).await;
    let r = AsteriskSim::new()
        .callerid("+15550001234")
        .uniqueid("ast-pass")
        .dtmf(Dtmf::Heard)
        .run(srv.agi())
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    let d = said(&r.commands);
    let cmds = after_vars(&r.commands);
    assert_eq!(
        cmds[..5],
        [
            "EXEC Answer \"\"".to_string(),
            "STREAM FILE custom/press \"0123456789*#\"".into(),
            format!("SAY DIGITS {d} \"0123456789*#\""),
            "WAIT FOR DIGIT 5000".into(),
            // The outcome for the dialplan: a passed caller is not blocked by the snippet.
            "EXEC MSet CALLGUARD_VERDICT=allow,CALLGUARD_ACTION=pass,CALLGUARD_CHALLENGE=passed"
                .into(),
        ],
        "{cmds:?}"
    );
    assert_eq!(
        cmds.len(),
        5,
        "continue: nothing after the variables: {cmds:?}"
    );
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    assert_eq!(r.variables["CALLGUARD_CHALLENGE"], "passed");
    assert!(r.saw_eof);

    // Keyed while the digit was being said: SAY DIGITS returns it, no wait.
    let r = AsteriskSim::new()
        .callerid("+15550001235")
        .uniqueid("ast-early-key")
        .dtmf(Dtmf::HeardEarly)
        .run(srv.agi())
        .await;
    assert!(!r.commands.iter().any(|c| c.starts_with("WAIT FOR DIGIT")));
    assert_eq!(r.variables["CALLGUARD_CHALLENGE"], "passed");

    let state = srv.running().state.clone();
    state.log.as_ref().unwrap().flush().await.unwrap();
    let v = calls(srv.http()).await;
    assert_eq!(end_of(&v, "ast-pass"), "challenge_passed");
    assert_eq!(end_of(&v, "ast-early-key"), "challenge_passed");
    let passed = server::scrape_sum(
        srv.http(),
        "callguard_challenges_total",
        &["trunk=\"support\"", "result=\"passed\""],
    )
    .await;
    assert_eq!(passed, 2.0);
    srv.stop().await;
}

#[tokio::test]
async fn asterisk_wrong_or_no_digit_fails_to_the_trunks_blocked_action() {
    let mut srv = server::start(YAML).await;
    for (uid, dtmf) in [("ast-wrong", Dtmf::Wrong), ("ast-silent", Dtmf::Silent)] {
        let r = AsteriskSim::new()
            .callerid("+15550001234")
            .uniqueid(uid)
            .dtmf(dtmf)
            .run(srv.agi())
            .await;
        assert!(r.error.is_none() && !r.timed_out, "{r:?}");
        let cmds = after_vars(&r.commands);
        let d = said(&r.commands);
        // Two tries, the wrong-key sound between them, then the trunk's
        // blocked action (reject: Busy, Hangup 17).
        assert_eq!(
            cmds,
            [
                "EXEC Answer \"\"".to_string(),
                "STREAM FILE custom/press \"0123456789*#\"".into(),
                format!("SAY DIGITS {d} \"0123456789*#\""),
                "WAIT FOR DIGIT 5000".into(),
                "STREAM FILE custom/wrong-key \"\"".into(),
                "STREAM FILE custom/press \"0123456789*#\"".into(),
                format!("SAY DIGITS {d} \"0123456789*#\""),
                "WAIT FOR DIGIT 5000".into(),
                "EXEC MSet CALLGUARD_VERDICT=block,CALLGUARD_ACTION=reject,CALLGUARD_CHALLENGE=failed"
                    .into(),
                "EXEC Busy 5".into(),
                "EXEC Hangup 17".into(),
            ],
            "{uid}"
        );
    }
    // A caller who hangs up during the prompt abandons it.
    let r = AsteriskSim::new()
        .callerid("+15550001234")
        .uniqueid("ast-gone")
        .hangup_on(starts_with("STREAM FILE"), HangupStyle::AfterReply)
        .run(srv.agi())
        .await;
    assert!(r.saw_eof, "{r:?}");
    assert!(!r.commands.iter().any(|c| c.starts_with("SAY DIGITS")));

    let state = srv.running().state.clone();
    state.log.as_ref().unwrap().flush().await.unwrap();
    let v = calls(srv.http()).await;
    assert_eq!(end_of(&v, "ast-wrong"), "challenge_failed");
    assert_eq!(end_of(&v, "ast-silent"), "challenge_failed");
    assert_eq!(end_of(&v, "ast-gone"), "caller_hangup");
    let http = srv.http();
    let n = |result: &'static str| async move {
        server::scrape_sum(
            http,
            "callguard_challenges_total",
            &[&format!("result=\"{result}\"")],
        )
        .await
    };
    assert_eq!(n("failed").await, 2.0);
    assert_eq!(n("abandoned").await, 1.0);
    srv.stop().await;
}

#[tokio::test]
async fn asterisk_early_media_challenge_with_its_own_pass_and_fail_actions() {
    let mut srv = server::start(YAML).await;
    let r = AsteriskSim::new()
        .callerid("+15550009999")
        .dtmf(Dtmf::Heard)
        .run(srv.agi())
        .await;
    let cmds = after_vars(&r.commands);
    assert_eq!(cmds[0], "EXEC Progress \"\"");
    assert_eq!(cmds[3], "WAIT FOR DIGIT 3000");
    assert_eq!(
        cmds[4..],
        [
            "EXEC MSet CALLGUARD_VERDICT=allow,CALLGUARD_ACTION=vm,CALLGUARD_CHALLENGE=passed",
            "EXEC VoiceMail 100@default,u",
            "EXEC Hangup 16"
        ]
    );
    let r = AsteriskSim::new()
        .callerid("+15550009999")
        .dtmf(Dtmf::Silent)
        .run(srv.agi())
        .await;
    let cmds = after_vars(&r.commands);
    assert_eq!(cmds.len(), 6, "one try: {cmds:?}");
    assert_eq!(
        cmds[4..],
        [
            "EXEC MSet CALLGUARD_VERDICT=block,CALLGUARD_ACTION=refuse,CALLGUARD_CHALLENGE=failed",
            "EXEC Hangup 21"
        ]
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_trunks_allowed_action_can_challenge_every_caller() {
    let mut srv = server::start(YAML).await;
    let r = AsteriskSim::new()
        .callerid("+15557654321")
        .dnid("+18005550111")
        .extension("+18005550111")
        .dtmf(Dtmf::Heard)
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_ACTION"], "pass");
    assert_eq!(r.variables["CALLGUARD_CHALLENGE"], "passed");
    assert!(r.commands.iter().any(|c| c.starts_with("SAY DIGITS")));
    srv.stop().await;
}

/// `app arg` of every execute after the first multiset.
fn fs_actions(r: &freeswitch::SimResult) -> Vec<String> {
    let all: Vec<String> = r
        .commands
        .iter()
        .filter(|c| c.header("call-command").is_some())
        .map(|c| match c.header("call-command") {
            Some("execute") => format!(
                "{} {}",
                c.header("execute-app-name").unwrap_or("?"),
                c.header("execute-app-arg").unwrap_or("")
            ),
            _ => format!("hangup {}", c.header("hangup-cause").unwrap_or("")),
        })
        .collect();
    assert!(all[0].starts_with("multiset "), "{all:?}");
    all[1..].to_vec()
}

/// The digit in the play_and_get_digits regexp (`^4$`).
fn fs_digit(actions: &[String]) -> String {
    let pagd = actions
        .iter()
        .find(|a| a.starts_with("play_and_get_digits "))
        .expect("play_and_get_digits sent");
    let regexp = pagd.split(' ').nth(9).unwrap();
    regexp
        .trim_start_matches('^')
        .trim_end_matches('$')
        .to_string()
}

#[tokio::test]
async fn freeswitch_play_and_get_digits_pass_fail_and_silence() {
    let mut srv = server::start(YAML).await;
    let sim = |uid: &str, dtmf| SimConfig {
        caller_number: "+15550001234".into(),
        unique_id: uid.into(),
        dtmf,
        ..SimConfig::default()
    };
    let r = sim("fs-pass", freeswitch::Dtmf::Heard).run(srv.esl()).await;
    assert!(r.error.is_none() && !r.timed_out, "{r:?}");
    let a = fs_actions(&r);
    let d = fs_digit(&a);
    assert_eq!(
        a,
        [
            "answer ".to_string(),
            format!(
                "play_and_get_digits 1 1 2 5000 # file_string://ivr/ivr-please_press.wav!digits/{d}.wav custom/wrong-key callguard_challenge ^{d}$ 5000"
            ),
            "multiset ^^|callguard_verdict=allow|callguard_action=pass|callguard_challenge=passed"
                .into(),
        ]
    );
    assert_eq!(r.variable("callguard_verdict"), Some("allow"));
    assert_eq!(
        r.commands.last().unwrap().line,
        "exit",
        "back to the dialplan"
    );

    for (uid, dtmf) in [
        ("fs-wrong", freeswitch::Dtmf::Wrong),
        ("fs-silent", freeswitch::Dtmf::Silent),
    ] {
        let r = sim(uid, dtmf).run(srv.esl()).await;
        assert!(r.error.is_none() && !r.timed_out, "{r:?}");
        let a = fs_actions(&r);
        assert_eq!(
            a[2..],
            [
                "multiset ^^|callguard_verdict=block|callguard_action=reject|callguard_challenge=failed",
                "respond 486 Busy Here",
            ],
            "{uid}"
        );
        assert_eq!(r.hangup_cause.as_deref(), Some("USER_BUSY"));
    }
    let state = srv.running().state.clone();
    state.log.as_ref().unwrap().flush().await.unwrap();
    let v = calls(srv.http()).await;
    assert_eq!(end_of(&v, "fs-pass"), "challenge_passed");
    assert_eq!(end_of(&v, "fs-wrong"), "challenge_failed");
    assert_eq!(end_of(&v, "fs-silent"), "challenge_failed");
    srv.stop().await;
}

#[tokio::test]
async fn freeswitch_early_media_challenge_then_voicemail() {
    let mut srv = server::start(YAML).await;
    let r = SimConfig {
        caller_number: "+15550009999".into(),
        dtmf: freeswitch::Dtmf::Heard,
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    let a = fs_actions(&r);
    assert_eq!(a[0], "pre_answer ");
    assert!(
        a[1].starts_with("play_and_get_digits 1 1 1 3000 # file_string://custom/press!digits/")
    );
    assert_eq!(
        a[2..],
        [
            "multiset ^^|callguard_verdict=allow|callguard_action=vm|callguard_challenge=passed",
            "answer ",
            "voicemail default example.com 100",
            "hangup NORMAL_CLEARING"
        ]
    );
    srv.stop().await;
}

#[test]
fn bad_challenge_settings_are_reported_at_the_action() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        "actions:\n  c1: { kind: challenge, digits: 9-1, tries: 0, timeout: soon, on_pass: nope }\n  c2: { kind: challenge, prompt: p, on_fail: c1 }\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for want in [
        "c.yaml:2:7: action c1: digits: \"9-1\": the range runs low to high (1-9)",
        "c.yaml:2:7: action c1: tries: 0: use 1 to 10",
        "c.yaml:2:7: action c1: timeout: bad duration \"soon\"",
        "c.yaml:2:7: action c1: on_pass: no action named \"nope\"",
        "c.yaml:2:7: action c1: `prompt:` is required for kind Challenge",
        "c.yaml:3:7: action c2: on_fail: no action named \"c1\" (or it is itself a challenge)",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

#[tokio::test]
async fn learning_blocks_repeat_failures_and_trusts_verified_humans() {
    let mut srv = server::start(YAML).await;
    for i in 0..2 {
        let r = AsteriskSim::new()
            .callerid("+15551110001")
            .dtmf(Dtmf::Silent)
            .run(srv.agi())
            .await;
        assert!(
            r.commands.iter().any(|c| c.starts_with("SAY DIGITS")),
            "try {i}"
        );
        assert_eq!(r.variables["CALLGUARD_CHALLENGE"], "failed");
    }
    // Two failures within the hour: the caller is learned as a robot.
    let r = AsteriskSim::new()
        .callerid("+15551110001")
        .run(srv.agi())
        .await;
    assert!(
        !r.commands.iter().any(|c| c.starts_with("SAY DIGITS")),
        "{:?}",
        r.commands
    );
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    assert_eq!(r.variables["CALLGUARD_LIST"], "velocity");
    assert!(
        r.variables["CALLGUARD_REASON"].starts_with(
            "learned from challenges on trunk support: +15551110001 is in robots until "
        ),
        "{:?}",
        r.variables
    );
    assert_eq!(r.commands[1..], ["EXEC Busy 5", "EXEC Hangup 17"]);

    // A human passes once and is not challenged again.
    let r = AsteriskSim::new()
        .callerid("+15551110002")
        .dtmf(Dtmf::Heard)
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_CHALLENGE"], "passed");
    let r = AsteriskSim::new()
        .callerid("+15551110002")
        .run(srv.agi())
        .await;
    assert!(!r.commands.iter().any(|c| c.starts_with("SAY DIGITS")));
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    assert_eq!(r.variables["CALLGUARD_ACTION"], "pass");
    assert!(r.variables["CALLGUARD_REASON"].contains("+15551110002 is in humans until "));
    let blocks: Value = reqwest::get(format!("http://{}/api/v1/velocity", srv.http()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rules: Vec<&str> = blocks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"robots") && rules.contains(&"humans"),
        "{blocks}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn learning_on_freeswitch_blocks_repeat_failures_and_trusts_verified_humans() {
    let mut srv = server::start(YAML).await;
    let sim = |caller: &str, uid: &str, dtmf| SimConfig {
        caller_number: caller.into(),
        unique_id: uid.into(),
        dtmf,
        ..SimConfig::default()
    };
    let challenged = |a: &[String]| a.iter().any(|x| x.starts_with("play_and_get_digits "));
    for i in 0..2 {
        let r = sim(
            "+15551110003",
            &format!("fs-robot-{i}"),
            freeswitch::Dtmf::Wrong,
        )
        .run(srv.esl())
        .await;
        assert!(r.error.is_none() && !r.timed_out, "{r:?}");
        assert!(challenged(&fs_actions(&r)), "try {i}");
        assert_eq!(r.variable("callguard_challenge"), Some("failed"));
    }
    // Two failures within the hour: blocked without a challenge.
    let r = sim("+15551110003", "fs-robot-2", freeswitch::Dtmf::Heard)
        .run(srv.esl())
        .await;
    let a = fs_actions(&r);
    assert!(!challenged(&a), "{a:?}");
    assert_eq!(r.variable("callguard_verdict"), Some("block"));
    assert_eq!(r.variable("callguard_list"), Some("velocity"));
    assert!(
        r.variable("callguard_reason")
            .unwrap()
            .contains("+15551110003 is in robots until "),
        "{r:?}"
    );
    assert_eq!(r.hangup_cause.as_deref(), Some("USER_BUSY"));

    // A human passes once and is not challenged again.
    let r = sim("+15551110004", "fs-human-1", freeswitch::Dtmf::Heard)
        .run(srv.esl())
        .await;
    assert_eq!(r.variable("callguard_challenge"), Some("passed"));
    let r = sim("+15551110004", "fs-human-2", freeswitch::Dtmf::Silent)
        .run(srv.esl())
        .await;
    let a = fs_actions(&r);
    assert!(!challenged(&a), "{a:?}");
    assert_eq!(r.variable("callguard_verdict"), Some("allow"));
    assert!(
        r.variable("callguard_reason")
            .unwrap()
            .contains("+15551110004 is in humans until ")
    );
    srv.stop().await;
}

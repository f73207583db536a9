//! The FastAGI server, driven by an Asterisk simulator that sends the bytes
//! of the real Asterisk 22 captures, over loopback TCP.

use callguard_sim::asterisk;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use asterisk::{AsteriskSim, EnvDelivery, Fault, HangupStyle, SimResult, parse_args, starts_with};
use server::SCREEN_YAML;

/// The commands after the one `EXEC MSet` that sets the five CALLGUARD_* variables.
fn after_vars(r: &SimResult) -> Vec<String> {
    let mset = &r.commands[0];
    assert!(mset.starts_with("EXEC MSet "), "{:?}", r.commands);
    let mut at = 0;
    for name in ["VERDICT", "ACTION", "RULE", "LIST", "REASON"] {
        let found = mset[at..]
            .find(&format!("CALLGUARD_{name}="))
            .unwrap_or_else(|| panic!("{name} missing or out of order in {mset:?}"));
        at += found;
        assert!(r.variables.contains_key(&format!("CALLGUARD_{name}")));
    }
    r.commands.iter().skip(1).cloned().collect()
}

fn call(caller: &str) -> AsteriskSim {
    AsteriskSim::new().callerid(caller)
}

#[tokio::test]
async fn each_action_has_its_exact_command_sequence() {
    let mut srv = server::start(SCREEN_YAML).await;
    let cases: &[(&str, &[&str])] = &[
        ("+15550000001", &["EXEC Busy 5", "EXEC Hangup 17"]),
        ("+15550000002", &["EXEC Congestion 3", "EXEC Hangup 34"]),
        ("+15550000003", &["EXEC Hangup 21"]),
        (
            "+15550000004",
            &["EXEC Playback custom/blocked", "EXEC Hangup 16"],
        ),
        (
            "+15550000005",
            &[
                "EXEC Progress \"\"",
                "EXEC Playback custom/blocked,noanswer",
                "EXEC Hangup 16",
            ],
        ),
        ("+15550000006", &["EXEC Playback custom/notice"]),
        // Leaving a message ends the call (not back into the dialplan).
        (
            "+15550000007",
            &["EXEC VoiceMail 100@default,u", "EXEC Hangup 16"],
        ),
        ("+15550000008", &["EXEC Goto ivr-main,s,1"]),
        ("+15550000009", &[]),
        ("+15557654321", &[]),
    ];
    for (caller, expected) in cases {
        let r = call(caller).run(srv.agi()).await;
        assert!(r.error.is_none() && !r.timed_out, "{caller}: {r:?}");
        assert_eq!(after_vars(&r), *expected, "{caller}");
        assert!(r.saw_eof, "{caller}: the server must close");
    }
    let r = call("+15550000001").run(srv.agi()).await;
    assert_eq!(
        r.variables.get("CALLGUARD_VERDICT").map(String::as_str),
        Some("block")
    );
    assert_eq!(
        r.variables.get("CALLGUARD_ACTION").map(String::as_str),
        Some("reject")
    );
    assert_eq!(
        r.variables.get("CALLGUARD_RULE").map(String::as_str),
        Some("Busy")
    );
    assert_eq!(
        r.variables.get("CALLGUARD_LIST").map(String::as_str),
        Some("blacklist")
    );
    assert!(r.variables["CALLGUARD_REASON"].contains("Busy"));
    // Advise mode and allowed callers only get the variables.
    let r = call("+15557654321").run(srv.agi()).await;
    assert_eq!(
        r.variables.get("CALLGUARD_VERDICT").map(String::as_str),
        Some("allow")
    );
    assert_eq!(
        r.variables.get("CALLGUARD_LIST").map(String::as_str),
        Some("default")
    );
    srv.stop().await;
}

#[tokio::test]
async fn vip_bridge_with_whisper_and_voicemail_when_unanswered() {
    let mut srv = server::start(SCREEN_YAML).await;
    let r = call("+15551234567")
        .variable("DIALSTATUS", "ANSWER")
        .run(srv.agi())
        .await;
    // The bridge ended: the call is over, not handed back to the dialplan
    // (Dial under AGI does not end the channel itself).
    assert_eq!(
        after_vars(&r),
        [
            "EXEC Dial PJSIP/vip-team,30,A(beep)",
            "GET VARIABLE DIALSTATUS",
            "EXEC Hangup 16"
        ]
    );
    let r = call("+15551234567")
        .variable("DIALSTATUS", "NOANSWER")
        .run(srv.agi())
        .await;
    assert_eq!(
        after_vars(&r),
        [
            "EXEC Dial PJSIP/vip-team,30,A(beep)",
            "GET VARIABLE DIALSTATUS",
            "EXEC VoiceMail 100@default,u",
            "EXEC Hangup 16"
        ]
    );
    srv.stop().await;
}

#[tokio::test]
async fn anonymous_and_restricted_callers() {
    let mut srv = server::start(SCREEN_YAML).await;
    // As in asterisk-22-local-unknown-caller: callerid "unknown", callingpres 67.
    let r = call("unknown")
        .calleridname("unknown")
        .callingpres(67)
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_RULE"], "Hidden");
    // A number with presentation restricted (0x20).
    let r = call("+15557654321").callingpres(0x20).run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_RULE"], "Hidden");
    // Allowed presentation.
    let r = call("+15557654321").callingpres(0).run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    srv.stop().await;
}

#[tokio::test]
async fn trunk_by_query_by_argument_and_by_did() {
    let mut srv = server::start(SCREEN_YAML).await;
    let stranger = "+15557654321";
    // The DID of the exclusive VIP line.
    let r = call(stranger)
        .script("screen")
        .dnid("+18005550199")
        .extension("s")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "exclusive");
    // agi_dnid unknown: the extension is the DID.
    let r = call(stranger)
        .script("screen")
        .dnid("unknown")
        .extension("+18005550199")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "exclusive");
    // Named by the query string: wins over the DID.
    let r = call(stranger)
        .script("screen?trunk=support")
        .dnid("+18005550199")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "default");
    // Named by an AGI argument.
    let r = call(stranger)
        .script("screen")
        .dnid("+18005550100")
        .arg("trunk=vip-line")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "exclusive");
    srv.stop().await;
}

#[tokio::test]
async fn hangup_during_playback_and_during_dial() {
    let mut srv = server::start(SCREEN_YAML).await;
    for style in [
        HangupStyle::AfterReply,
        HangupStyle::BeforeReply,
        HangupStyle::Glued,
    ] {
        let r = call("+15550000004")
            .hangup_on(starts_with("EXEC Playback"), style)
            .run(srv.agi())
            .await;
        // Nothing follows the hangup: no Hangup command on the dead channel.
        assert_eq!(
            after_vars(&r),
            ["EXEC Playback custom/blocked"],
            "{style:?}"
        );
        assert!(r.saw_eof, "{style:?}");
    }
    let r = call("+15551234567")
        .variable("DIALSTATUS", "CANCEL")
        .hangup_on(starts_with("EXEC Dial"), HangupStyle::AfterReply)
        .run(srv.agi())
        .await;
    // DIALSTATUS is still read (it works on a dead channel); no voicemail.
    assert_eq!(
        after_vars(&r),
        [
            "EXEC Dial PJSIP/vip-team,30,A(beep)",
            "GET VARIABLE DIALSTATUS"
        ]
    );
    assert!(r.saw_eof);
    srv.stop().await;
}

#[tokio::test]
async fn hangup_before_variables_are_set_and_511_after_hangup() {
    let mut srv = server::start(SCREEN_YAML).await;
    // The caller leaves as the first variable is set: the plan is not run.
    let r = call("+15550000004")
        .hangup_on(
            starts_with("EXEC MSet \"CALLGUARD_VERDICT"),
            HangupStyle::BeforeReply,
        )
        .run(srv.agi())
        .await;
    assert_eq!(r.commands.len(), 1, "{:?}", r.commands);
    assert!(r.saw_eof);
    // Busy on a dead channel returns -1; the Hangup after it gets 511: normal.
    let r = call("+15550000001")
        .hangup_on(starts_with("EXEC Busy"), HangupStyle::AfterReply)
        .run(srv.agi())
        .await;
    assert_eq!(after_vars(&r), ["EXEC Busy 5", "EXEC Hangup 17"]);
    srv.stop().await;
}

#[tokio::test]
async fn environment_byte_by_byte_and_in_chunks() {
    let mut srv = server::start(SCREEN_YAML).await;
    for d in [EnvDelivery::ByteByByte, EnvDelivery::Chunks(7)] {
        let r = call("+15550000001").delivery(d).run(srv.agi()).await;
        assert_eq!(after_vars(&r), ["EXEC Busy 5", "EXEC Hangup 17"]);
    }
    srv.stop().await;
}

#[tokio::test]
async fn broken_peers_are_closed_and_counted_never_a_panic() {
    let mut srv = server::start(&format!("{SCREEN_YAML}\nagi: {{ env_timeout: 1s }}\n")).await;
    for fault in [
        Fault::EofMidEnvironment,
        Fault::OverlongLine(20_000),
        Fault::Garbage(vec![0xff, 0xfe, b'\n', 0, 1, 2, b'\n', b'\n']),
    ] {
        let r = AsteriskSim::new().fault(fault.clone()).run(srv.agi()).await;
        assert!(r.commands.is_empty(), "{fault:?}: {:?}", r.commands);
        assert!(
            r.saw_eof || r.error.is_some(),
            "{fault:?}: connection not closed"
        );
    }
    // One byte a second: closed by the environment timeout, not held open.
    let r = AsteriskSim::new()
        .delivery(EnvDelivery::Trickle(Duration::from_secs(1)))
        .timeout(Duration::from_secs(10))
        .run(srv.agi())
        .await;
    assert!(!r.timed_out, "the server must give up first");
    assert!(r.commands.is_empty());
    let m = srv.running().state.metrics.render();
    assert!(
        m.contains("callguard_protocol_errors_total{kind=\"timeout\",pbx=\"asterisk\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("callguard_protocol_errors_total{kind=\"protocol\",pbx=\"asterisk\"}"),
        "{m}"
    );
    // The server is still serving.
    let r = call("+15550000001").run(srv.agi()).await;
    assert_eq!(after_vars(&r), ["EXEC Busy 5", "EXEC Hangup 17"]);
    srv.stop().await;
}

#[tokio::test]
async fn caller_name_injection_cannot_add_a_command() {
    let mut srv = server::start(SCREEN_YAML).await;
    // Blocked callers get their reason echoed; make the caller ID itself hostile.
    let evil = "+44\"\nEXEC Dial PJSIP/premium\n\\";
    let r = AsteriskSim::new()
        .callerid(evil)
        .calleridname("x\"\nEXEC Dial evil")
        .run(srv.agi())
        .await;
    assert!(
        r.commands.iter().all(|c| !c.starts_with("EXEC Dial")),
        "{:?}",
        r.commands
    );
    for c in &r.commands {
        let args = parse_args(c);
        if c.starts_with("SET VARIABLE") {
            assert_eq!(
                args.len(),
                4,
                "SET VARIABLE must stay one name and one value: {c:?}"
            );
        }
        if c.starts_with("EXEC MSet") {
            assert_eq!(args.len(), 3, "MSet data must stay one argument: {c:?}");
            let names: Vec<String> = callguard_sim::asterisk::parse::mset_pairs(&args[2])
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            assert_eq!(
                names,
                ["VERDICT", "ACTION", "RULE", "LIST", "REASON"].map(|n| format!("CALLGUARD_{n}")),
                "a value must not add or split a pair: {c:?}"
            );
        }
    }
    srv.stop().await;
}

#[tokio::test]
async fn decision_error_fails_open_and_fail_closed_blocks() {
    let mut srv = server::start(server::BROKEN_REGEX).await;
    let r = call("+442071234567").run(srv.agi()).await;
    // Every variable a decided call gets, in the same order, plus ERROR: one MSet.
    assert_eq!(r.commands.len(), 1, "{:?}", r.commands);
    assert!(
        r.commands[0].starts_with(
            "EXEC MSet \"CALLGUARD_VERDICT=allow,CALLGUARD_ACTION=pass,CALLGUARD_RULE=,\
             CALLGUARD_LIST=,CALLGUARD_REASON=fail open: "
        ),
        "{:?}",
        r.commands
    );
    assert!(r.commands[0].ends_with(",CALLGUARD_ERROR=error\""));
    assert_eq!(r.variables["CALLGUARD_ERROR"], "error");
    assert!(r.variables["CALLGUARD_REASON"].starts_with("fail open: "));
    srv.stop().await;
    // The one-variable-per-command form, for a PBX without MSet.
    let mut srv = server::start(&format!(
        "{}\nagi: {{ set_vars: per_variable }}\n",
        server::BROKEN_REGEX
    ))
    .await;
    let r = call("+442071234567").run(srv.agi()).await;
    assert_eq!(
        r.commands[..4],
        [
            "SET VARIABLE CALLGUARD_VERDICT \"allow\"",
            "SET VARIABLE CALLGUARD_ACTION \"pass\"",
            "SET VARIABLE CALLGUARD_RULE \"\"",
            "SET VARIABLE CALLGUARD_LIST \"\"",
        ]
    );
    assert!(
        r.commands[4].starts_with("SET VARIABLE CALLGUARD_REASON \"fail open: "),
        "{:?}",
        r.commands
    );
    assert_eq!(r.commands[5], "SET VARIABLE CALLGUARD_ERROR \"error\"");
    assert_eq!(r.commands.len(), 6, "{:?}", r.commands);
    srv.stop().await;
    let mut srv = server::start(&format!("{}\nfail: closed\n", server::BROKEN_REGEX)).await;
    let r = call("+442071234567").run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "block");
    assert_eq!(r.variables["CALLGUARD_ACTION"], "reject");
    assert_eq!(r.variables["CALLGUARD_RULE"], "");
    assert_eq!(r.variables["CALLGUARD_LIST"], "");
    assert!(r.variables["CALLGUARD_REASON"].starts_with("fail closed: "));
    assert_eq!(r.variables["CALLGUARD_ERROR"], "error");
    assert_eq!(r.commands[1..], ["EXEC Busy 5", "EXEC Hangup 17"]);
    srv.stop().await;
}

#[tokio::test]
async fn decision_timeout_fails_open() {
    let mut srv = server::start_slow_decisions("agi: { decide_timeout: 1ms }").await;
    let r = call("+15550000001").run(srv.agi()).await;
    assert_eq!(r.variables["CALLGUARD_VERDICT"], "allow");
    assert_eq!(r.variables["CALLGUARD_ERROR"], "timeout");
    assert_eq!(r.variables["CALLGUARD_RULE"], "");
    assert_eq!(r.variables["CALLGUARD_LIST"], "");
    assert_eq!(
        r.variables["CALLGUARD_REASON"],
        "fail open: no decision within 1ms"
    );
    // The six variables in one MSet, and nothing else.
    assert_eq!(r.commands.len(), 1, "{:?}", r.commands);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_calls_finish_within_the_grace_period_then_closes() {
    let mut srv = server::spawn_binary(
        &format!("{SCREEN_YAML}\nserver: {{ grace_period: 1s }}\n"),
        &[],
    );
    let addr = srv.agi.unwrap();
    // A VIP call ringing the team: EXEC Dial lasts the call.
    let ringing = tokio::spawn(async move {
        call("+15551234567")
            .stall_on(starts_with("EXEC Dial"))
            .timeout(Duration::from_secs(20))
            .run(addr)
            .await
    });
    // Wait until the call is in progress (its Dial has been sent).
    let http = srv.http.unwrap();
    let mut tries = 0;
    while server::scrape_sum(http, "callguard_sessions_active", &["pbx=\"asterisk\""]).await < 1.0 {
        tries += 1;
        assert!(tries < 500, "the call never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    srv.signal(libc::SIGTERM);
    // New calls are refused at once (the listener is gone); the DIAL in
    // progress keeps its socket until the grace period ends.
    let status = tokio::task::spawn_blocking(move || {
        let s = srv.wait_exit(Duration::from_secs(15));
        (s, srv)
    })
    .await
    .unwrap();
    assert!(
        status.0.is_some_and(|s| s.success()),
        "exit: {:?}",
        status.0
    );
    let r = ringing.await.unwrap();
    assert!(
        r.commands.iter().any(|c| c.starts_with("EXEC Dial")),
        "{:?}",
        r.commands
    );
    assert!(r.saw_eof, "the session must be closed, not left hanging");
    assert!(!r.timed_out);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn peers_outside_the_allow_list_and_excess_connections_are_refused_and_counted() {
    // Loopback is not in the allow list: refused before a byte is read.
    let mut srv = server::start(&format!(
        "{SCREEN_YAML}\nagi: {{ allow: [\"10.0.0.0/8\", \"192.0.2.7\"] }}\n"
    ))
    .await;
    let r = call("+15550000001").run(srv.agi()).await;
    assert!(r.commands.is_empty(), "{:?}", r.commands);
    assert!(r.saw_eof || r.error.is_some());
    let m = srv.running().state.metrics.render();
    assert!(
        m.contains(
            "callguard_connections_refused_total{pbx=\"asterisk\",reason=\"not_allowed\"} 1"
        ),
        "{m}"
    );
    srv.stop().await;

    // One connection at a time: a second caller while a VIP call rings is refused.
    let mut srv = server::start(&format!("{SCREEN_YAML}\nagi: {{ max_connections: 1 }}\n")).await;
    let addr = srv.agi();
    let ringing = tokio::spawn(async move {
        call("+15551234567")
            .stall_on(starts_with("EXEC Dial"))
            .timeout(Duration::from_secs(3))
            .run(addr)
            .await
    });
    let http = srv.http();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server::scrape_sum(http, "callguard_sessions_active", &["pbx=\"asterisk\""]).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first call never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = call("+15550000001").run(addr).await;
    assert!(
        r.commands.is_empty(),
        "second call must be refused: {:?}",
        r.commands
    );
    assert_eq!(
        server::scrape_sum(
            http,
            "callguard_connections_refused_total",
            &["reason=\"too_many\""]
        )
        .await,
        1.0
    );
    let first = ringing.await.unwrap();
    assert!(first.commands.iter().any(|c| c.starts_with("EXEC Dial")));
    srv.stop().await;
}

/// Issue 10.7: a trunk the dialplan names but the config lacks is counted,
/// and the call's reason says which trunk was chosen instead and why.
#[tokio::test]
async fn unknown_trunk_name_is_counted_and_explained() {
    let mut srv = server::start(SCREEN_YAML).await;
    let r = call("+15557654321")
        .script("screen?trunk=nosuch")
        .dnid("+18005550199")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "exclusive");
    let reason = &r.variables["CALLGUARD_REASON"];
    assert!(
        reason.starts_with("trunk vip-line is in exclusive mode")
            && reason.contains("nosuch")
            && reason.ends_with(
                "named by the dialplan does not exist; trunk vip-line chosen by DID +18005550199"
            ),
        "{reason:?}"
    );
    // No DID selects a trunk: default_trunk, and the reason says so.
    let r = call("+15557654321")
        .script("screen")
        .arg("trunk=nosuch")
        .dnid("+18005550000")
        .extension("s")
        .run(srv.agi())
        .await;
    assert_eq!(r.variables["CALLGUARD_LIST"], "default");
    assert!(
        r.variables["CALLGUARD_REASON"].contains("trunk support chosen as default_trunk"),
        "{:?}",
        r.variables["CALLGUARD_REASON"]
    );
    // A known trunk is not counted.
    call("+15557654321")
        .script("screen?trunk=support")
        .run(srv.agi())
        .await;
    let n = server::scrape_sum(
        srv.http(),
        "callguard_unknown_trunk_total",
        &["pbx=\"asterisk\""],
    )
    .await;
    assert_eq!(n, 2.0);
    srv.stop().await;
}

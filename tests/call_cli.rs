//! `callguard call` (issue 27, "try it without a PBX"): the built binary places one simulated
//! call against the built `serve` on the shipped configuration, over the real FastAGI and
//! outbound-ESL protocols, and prints what callguard sent, the variables and what the PBX
//! would do; every call has its own unique id, which `callguard log` shows.

#[path = "support/server.rs"]
mod server;
#[path = "support/shipped.rs"]
mod shipped;

use std::net::SocketAddr;
use std::process::Command;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn callguard(args: &[&str]) -> Out {
    let out = Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(args)
        .env_remove("CALLGUARD_CONFIG")
        .output()
        .expect("run callguard");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `callguard call CALLER --pbx PBX --server ADDR`: the output, and the printed unique id.
fn call(caller: &str, pbx: &str, server: SocketAddr, extra: &[&str]) -> (Out, String) {
    let server = server.to_string();
    let mut args = vec!["call", caller, "--pbx", pbx, "--server", &server];
    args.extend_from_slice(extra);
    let out = callguard(&args);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let uid = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("unique id: "))
        .unwrap_or_else(|| panic!("no unique id line: {}", out.stdout))
        .to_string();
    (out, uid)
}

fn summary(out: &Out) -> &str {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("the PBX would: "))
        .unwrap_or_else(|| panic!("no summary line: {}", out.stdout))
}

#[test]
fn a_blocked_and_an_allowed_caller_on_both_pbxs() {
    let mut shipped = shipped::spawn(None);
    let agi = shipped.proc.agi.expect("agi listener");
    let esl = shipped.proc.esl.expect("esl listener");
    let mut ids = Vec::new();

    // Asterisk: the shipped Block-International rule; busy, then hang up with cause 17.
    let (out, uid) = call("+442079999999", "asterisk", agi, &[]);
    assert!(out.stdout.contains("  EXEC Busy 5\n"), "{}", out.stdout);
    assert!(out.stdout.contains("  EXEC Hangup 17\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("  CALLGUARD_VERDICT=block\n")
            && out
                .stdout
                .contains("  CALLGUARD_RULE=Block-International\n"),
        "{}",
        out.stdout
    );
    assert_eq!(summary(&out), "busy, then hang up (cause 17)");
    ids.push(uid);

    // Asterisk, a whitelisted caller (allowed at any hour: the support trunk is VIP-only after
    // office hours), the trunk named as the dialplan does: variables
    // only, the dialplan goes on.
    let (out, uid) = call("+442071234567", "asterisk", agi, &["--trunk", "support"]);
    assert!(
        out.stdout.contains("  CALLGUARD_VERDICT=allow\n"),
        "{}",
        out.stdout
    );
    assert_eq!(summary(&out), "continue in the dialplan");
    assert!(!out.stdout.contains("DIALSTATUS"), "{}", out.stdout);
    ids.push(uid);

    // FreeSWITCH: 486 Busy Here for the same blocked caller.
    let (out, uid) = call(
        "+442079999999",
        "freeswitch",
        esl,
        &["--did", "+18005550100"],
    );
    assert!(
        out.stdout
            .contains("  sendmsg execute respond 486 Busy Here\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  callguard_verdict=block\n"),
        "{}",
        out.stdout
    );
    assert_eq!(summary(&out), "respond 486 Busy Here");
    ids.push(uid);

    // FreeSWITCH, the allowed caller: `exit`, back to the dialplan.
    let (out, uid) = call("+442071234567", "freeswitch", esl, &["--trunk", "support"]);
    assert!(
        out.stdout.contains("  callguard_verdict=allow\n") && out.stdout.contains("  exit\n"),
        "{}",
        out.stdout
    );
    assert_eq!(summary(&out), "continue in the dialplan");
    ids.push(uid);

    // Four calls, four unique ids, each in the decision log with its own verdict.
    let unique: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 4, "{ids:?}");
    let config = shipped.proc.config.to_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let log = callguard(&["log", "--config", &config, "--json"]);
        let rows: Vec<serde_json::Value> = log
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let logged: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["unique_id"].as_str().unwrap_or_default().to_string(),
                    r["verdict"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let expected = [
            (&ids[0], "block"),
            (&ids[1], "allow"),
            (&ids[2], "block"),
            (&ids[3], "allow"),
        ];
        if expected
            .iter()
            .all(|(id, v)| logged.iter().any(|(u, w)| u == *id && w == v))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log lacks the calls {ids:?}: {logged:?}\n{}",
            log.stderr
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // `block --from-call` takes the printed unique id and finds exactly that call.
    let out = callguard(&[
        "block",
        "--config",
        &config,
        "--from-call",
        &ids[1],
        "--list",
        "spam",
        "--name",
        "Tried-it",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("+442071234567"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    shipped.assert_alive("four simulated calls");
    shipped.proc.signal(libc::SIGTERM);
    assert!(
        shipped
            .proc
            .wait_exit(std::time::Duration::from_secs(30))
            .is_some(),
        "serve did not stop"
    );
}

#[test]
fn an_unreachable_server_is_reported_as_fail_open() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = callguard(&["call", "+15551234567", "--server", &port.to_string()]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("fail open"), "{}", out.stderr);
    assert_eq!(summary(&out), "continue in the dialplan");
}

//! The security review's promises, checked on the real service: reads that
//! hold phone numbers can be token-protected, `/metrics` carries no caller
//! numbers, the decision log is owner-only, tokens never reach the log, a
//! token whose secret is missing is warned about at start, and a caller ID
//! cannot inject ESL headers.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use std::io::Read;
use std::sync::Once;

use asterisk::AsteriskSim;
use freeswitch::SimConfig;
use reqwest::StatusCode;

const TOKEN: &str = "t0ken-that-must-never-be-logged";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before any server of this binary reads the environment.
        unsafe { std::env::set_var("CG_SEC_TOKEN", TOKEN) };
    });
}

fn yaml(protect_reads: bool) -> String {
    format!(
        r#"
normalize: {{ default_region: US }}
default_trunk: support
http:
  protect_reads: {protect_reads}
  tokens:
    - {{ name: ops, token_env: CG_SEC_TOKEN }}
    - {{ name: forgotten, token_env: CG_SEC_TOKEN_NEVER_SET }}
trunks:
  support:
    lists:
      - {{ path: spam.csv, as: blacklist, name: spam }}
"#
    )
}

const SPAM: &str = "rule_name,pattern,match_type,action,enabled\nSpam-1,+15550000001,exact,,true\n";

const NUMBER_READS: &[&str] = &[
    "/api/v1/lists",
    "/api/v1/lists/spam",
    "/api/v1/history",
    "/api/v1/calls",
    "/api/v1/calls/stats",
];

#[tokio::test]
async fn reads_of_phone_numbers_need_a_token_when_protected() {
    env();
    let mut srv = server::start_with(&yaml(true), &[("spam.csv", SPAM)]).await;
    let http = srv.http();
    let c = reqwest::Client::new();
    for path in NUMBER_READS {
        let url = format!("http://{http}{path}");
        let r = c.get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let r = c.get(&url).bearer_auth("wrong").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    let r = c
        .post(format!("http://{http}/api/v1/test"))
        .json(&serde_json::json!({ "caller": "+15550000001" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Health and metrics stay open for load balancers and Prometheus.
    for path in ["/metrics", "/api/v1/status"] {
        let r = c.get(format!("http://{http}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    srv.stop().await;
}

#[tokio::test]
async fn reads_are_open_on_loopback_by_default() {
    env();
    let mut srv = server::start_with(&yaml(false), &[("spam.csv", SPAM)]).await;
    let http = srv.http();
    for path in NUMBER_READS {
        let r = reqwest::get(format!("http://{http}{path}")).await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    // Changes still need a token.
    let r = reqwest::Client::new()
        .put(format!("http://{http}/api/v1/lists/spam"))
        .header("content-type", "text/csv")
        .body(SPAM)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    srv.stop().await;
}

#[tokio::test]
async fn metrics_carry_no_caller_numbers_and_the_log_is_owner_only() {
    env();
    let mut srv = server::start_with(&yaml(false), &[("spam.csv", SPAM)]).await;
    let callers = ["+15550000001", "+15557654321", "2125559876", "anonymous"];
    for c in callers {
        AsteriskSim::new()
            .callerid(c)
            .calleridname("Mallory 5551230000")
            .run(srv.agi())
            .await;
        SimConfig {
            caller_number: c.into(),
            caller_name: "Mallory 5551230000".into(),
            ..SimConfig::default()
        }
        .run(srv.esl())
        .await;
    }
    let body = reqwest::get(format!("http://{}/metrics", srv.http()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("callguard_calls_total"), "{body}");
    for digits in ["5550000001", "5557654321", "2125559876", "5551230000"] {
        assert!(!body.contains(digits), "/metrics shows {digits}");
    }
    srv.stop().await; // flushes the log
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["calls.db", "calls.db-wal", "calls.db-shm"] {
            let p = srv.dir.path().join(name);
            if let Ok(meta) = std::fs::metadata(&p) {
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode & 0o077, 0, "{name} is {mode:o}");
            }
        }
        assert!(srv.dir.path().join("calls.db").exists());
    }
}

/// The binary's own log, with every level on, never shows a token, and
/// warns at start about the token whose variable is not set.
#[tokio::test]
async fn tokens_are_never_logged_and_a_missing_secret_is_warned_about() {
    let (dir, config) = server::write_config(&yaml(false), &[("spam.csv", SPAM)]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callguard"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .env("CG_SEC_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let line = String::from_utf8(first).unwrap();
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .unwrap()
        .to_string();
    let c = reqwest::Client::new();
    let url = format!("http://{http}/api/v1/lists/spam");
    for token in [TOKEN, "a-wrong-token-also-secret"] {
        c.put(&url)
            .bearer_auth(token)
            .header("content-type", "text/csv")
            .body(SPAM.replace("Spam-1", "Spam-2"))
            .send()
            .await
            .unwrap();
    }
    // SAFETY: our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains(TOKEN), "the token was logged");
    assert!(!log.contains("a-wrong-token-also-secret"));
    assert!(
        log.contains("CG_SEC_TOKEN_NEVER_SET is not set"),
        "no warning for the unset token:\n{log}"
    );
    assert!(!log.contains("CG_SEC_TOKEN is not set"));
    drop(dir);
}

/// A caller ID with a newline (URL-encoded by FreeSWITCH, decoded by us)
/// cannot add a header to the commands we send back.
#[tokio::test]
async fn caller_id_cannot_inject_esl_headers() {
    env();
    let mut srv = server::start_with(&yaml(false), &[("spam.csv", SPAM)]).await;
    let r = SimConfig {
        caller_number: "+15550000001\ncall-command: hangup\nhangup-cause: CALL_REJECTED".into(),
        caller_name: "Eve\r\nexecute-app-name: bridge".into(),
        ..SimConfig::default()
    }
    .run(srv.esl())
    .await;
    assert!(!r.commands.is_empty());
    for c in &r.commands {
        assert_ne!(c.header("hangup-cause"), Some("CALL_REJECTED"), "{c:?}");
        assert_ne!(c.header("execute-app-name"), Some("bridge"), "{c:?}");
    }
    srv.stop().await;
}

//! The soak driver of `bench/soak.sh`, in short: a few hundred calls through
//! both protocols while a list is replaced through the API and the config
//! file is edited, and SIGTERM under load. No timing assertions: every call
//! must be decided, verdicts must follow the list in force, reloads must
//! have happened, and shutdown must finish calls and refuse new ones.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;
#[path = "support/soak.rs"]
mod soak;

use std::sync::Once;
use std::time::Duration;

const TOKEN: &str = "soak-test-token";

fn env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: once, before this binary's tests start servers or read the environment.
        unsafe { std::env::set_var(soak::TOKEN_ENV, TOKEN) };
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_stay_decided_while_lists_are_replaced_and_the_config_is_edited() {
    env();
    let churn = soak::churn_csv(0);
    let mut srv =
        server::start_with(&soak::config_yaml(), &[("lists/churn.csv", churn.as_str())]).await;
    let report = soak::run(soak::Plan {
        agi: srv.agi(),
        esl: srv.esl(),
        http: srv.http(),
        token: TOKEN.into(),
        config: Some(srv.config.clone()),
        duration: None,
        calls: Some(200),
        lanes: 4,
        rate: None,
        put_every: Duration::from_millis(100),
        edit_every: Duration::from_millis(300),
        pid: None,
    })
    .await;
    println!("{}", report.table());
    assert_eq!(report.failed, 0, "{:#?}", report.failures);
    assert_eq!((report.agi_calls, report.esl_calls), (200, 200));
    assert!(
        report.checked > 0,
        "no verdict could be checked: {report:?}"
    );
    assert!(report.blocked > 0 && report.blocked < 400, "{report:?}");
    assert!(report.puts > 0 && report.edits > 0, "{report:?}");
    assert_eq!(report.put_failures, 0, "{:#?}", report.failures);
    // Every PUT answers after its own reload.
    assert!(report.reloads >= report.puts, "{report:?}");
    assert_eq!(report.reload_failures, 0);
    // The last config edit is in force (the file watch applies it within a
    // second; the wait is bounded, not timed): its rule blocks its number.
    let edited = format!("+1555999{:04}", report.edits);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = asterisk::AsteriskSim::new()
            .callerid(&edited)
            .run(srv.agi())
            .await;
        if r.variables.get("CALLGUARD_VERDICT").map(String::as_str) == Some("block") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the last config edit was never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The list on disk is the last generation applied.
    let api = reqwest::get(format!(
        "http://{}/api/v1/lists/churn?format=csv",
        srv.http()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        api.contains(&format!("generation {}", report.puts)),
        "{api}"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_finishes_calls_in_progress_and_refuses_new_ones() {
    let mut srv = server::spawn_binary(
        &format!("{}\nserver: {{ grace_period: 60s }}\n", soak::config_yaml()),
        &[("lists/churn.csv", &soak::churn_csv(0))],
    );
    let (agi, esl, http) = (srv.agi.unwrap(), srv.esl.unwrap(), srv.http.unwrap());
    let pid = srv.child.id() as i32;
    let report = soak::sigterm_under_load(agi, esl, http, 4, Duration::from_millis(150), || {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    })
    .await;
    println!("{report:?}");
    assert!(report.broken.is_empty(), "{:#?}", report.broken);
    assert!(report.in_progress >= 8, "{report:?}");
    assert!(report.in_progress_completed > 0, "{report:?}");
    assert!(
        report.connect_refused,
        "a new connect was accepted after SIGTERM"
    );
    let status = tokio::task::spawn_blocking(move || srv.wait_exit(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
}

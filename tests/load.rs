//! 5,000 concurrent calls on each PBX protocol, against the real binary in
//! its own process. In a test binary of their own, one after the other, so
//! no other test competes with them for the two cores.

use callguard_sim::asterisk;
use callguard_sim::freeswitch;
#[path = "support/server.rs"]
mod server;

use std::time::Duration;

use asterisk::AsteriskSim;
use freeswitch::SimConfig;
use server::SCREEN_YAML;

fn call(caller: &str) -> AsteriskSim {
    AsteriskSim::new().callerid(caller)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_thousand_concurrent_calls_on_each_pbx() {
    fastagi().await;
    outbound_esl().await;
}

async fn fastagi() {
    let srv = server::spawn_binary(
        &format!("{SCREEN_YAML}\nagi: {{ env_timeout: 30s, decide_timeout: 10s }}\n"),
        &[],
    );
    let addr = srv.agi.unwrap();
    let http = srv.http.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..5000u32 {
        // Waves of 250, never more than 500 waiting to be accepted: see
        // `server::pace` (the kernel drops handshakes past its listen queue).
        if i % 250 == 0 {
            server::pace(http, "asterisk", i as usize, 500).await;
        }
        set.spawn(async move {
            let caller = if i % 2 == 0 {
                "+15550000001".to_string()
            } else {
                format!("+1555{:07}", 1_000_000 + i)
            };
            call(&caller)
                .uniqueid(&format!("1795432537.{i}"))
                .timeout(Duration::from_secs(120))
                .run(addr)
                .await
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert!(r.error.is_none() && !r.timed_out && r.saw_eof, "{r:?}");
        assert!(r.variables.contains_key("CALLGUARD_VERDICT"));
        ok += 1;
    }
    assert_eq!(ok, 5000);
    assert_eq!(
        server::scrape_sum(http, "callguard_calls_total", &["pbx=\"asterisk\""]).await,
        5000.0
    );
    assert_eq!(
        server::scrape_sum(http, "callguard_calls_total", &["verdict=\"block\""]).await,
        2500.0
    );
}

async fn outbound_esl() {
    // The real binary in its own process, as FreeSWITCH would reach it.
    let srv = server::spawn_binary(
        &format!("{SCREEN_YAML}\nesl: {{ connect_timeout: 30s, decide_timeout: 10s }}\n"),
        &[],
    );
    let addr = srv.esl.unwrap();
    let http = srv.http.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..5000u32 {
        // Waves of 250, never more than 500 waiting to be accepted: see
        // `server::pace` (the kernel drops handshakes past its listen queue).
        if i % 250 == 0 {
            server::pace(http, "freeswitch", i as usize, 500).await;
        }
        set.spawn(async move {
            let caller = if i % 2 == 0 {
                "+15550000001".to_string()
            } else {
                format!("+1555{:07}", 1_000_000 + i)
            };
            SimConfig {
                caller_number: caller,
                event_delay: Duration::from_millis(200),
                connect_timeout: Duration::from_secs(60),
                overall_timeout: Duration::from_secs(120),
                ..SimConfig::default()
            }
            .run(addr)
            .await
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        assert!(
            r.error.is_none() && !r.timed_out && r.connect_received,
            "{r:?}"
        );
        assert!(r.variable("callguard_verdict").is_some(), "{r:?}");
        ok += 1;
    }
    assert_eq!(ok, 5000);
    assert_eq!(
        server::scrape_sum(http, "callguard_calls_total", &["pbx=\"freeswitch\""]).await,
        5000.0
    );
    assert_eq!(
        server::scrape_sum(http, "callguard_calls_total", &["verdict=\"block\""]).await,
        2500.0
    );
}

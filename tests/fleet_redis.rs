//! A fleet's shared velocity counters (`velocity_limits.redis`) against a real
//! `redis-server` the test starts (tests/support/redis.rs) and three real
//! `callguard serve` processes: a burst spread round-robin over the three is
//! blocked at the rule's count, as on one instance; with Redis gone the calls
//! are still decided, counted in memory (the status and the metrics say so),
//! and counting is shared again once Redis is back. A Redis that accepts but
//! never answers costs a call its `redis_timeout`, not a decision.

use std::net::SocketAddr;
use std::time::Duration;

use callguard_sim::asterisk::AsteriskSim;
use serde_json::Value;

#[path = "support/redis.rs"]
mod redis;
#[path = "support/server.rs"]
mod server;

use redis::RedisServer;
use server::ServeProcess;

/// At most `MAX` calls a minute from one caller; the next is blocked for an hour.
const MAX: usize = 5;

/// Three instances sharing `redis_url`. Each call's counts get `timeout`: the
/// fleet tests give a loaded test machine room (a count past it is counted in
/// memory, and this instance alone would not see the burst); the stalled test
/// wants it short.
fn yaml(redis_url: &str, timeout: &str) -> String {
    format!(
        r#"
default_trunk: main
trunks:
  main:
    dids: ["+18005550100"]
    velocity:
      - {{ name: burst, scope: caller, max: {MAX}, per: 1m, block_for: 1h }}
velocity_limits:
  redis: "{redis_url}"
  redis_timeout: {timeout}
"#
    )
}

/// One call through the Asterisk simulator: its variables (decided or not,
/// every call must end normally).
async fn call(
    agi: SocketAddr,
    caller: &str,
    uid: &str,
) -> std::collections::HashMap<String, String> {
    let r = AsteriskSim::new()
        .callerid(caller)
        .uniqueid(uid)
        .run(agi)
        .await;
    assert!(r.error.is_none() && !r.timed_out, "{uid}: {r:?}");
    assert!(
        !r.variables.contains_key("CALLGUARD_ERROR"),
        "{uid} was not decided: {:?}",
        r.variables
    );
    r.variables
}

async fn status(http: SocketAddr) -> Value {
    reqwest::get(format!("http://{http}/api/v1/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (bounded, generously) until every instance's status says its
/// velocity counters are `counters` ("redis" or "local").
async fn counters_become(fleet: &[ServeProcess], counters: &str) {
    for p in fleet {
        let http = p.http.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let s = status(http).await;
            if s["velocity"]["counters"] == counters {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{http}: counters never became {counters}: {}",
                s["velocity"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A burst of `MAX + 1` calls from `caller`, round-robin over the fleet: the
/// first `MAX` are allowed, the next is blocked by the velocity rule.
async fn burst_is_blocked_at_max(fleet: &[ServeProcess], caller: &str) {
    for i in 0..MAX {
        let agi = fleet[i % fleet.len()].agi.unwrap();
        let v = call(agi, caller, &format!("{caller}-{i}")).await;
        assert_eq!(
            v["CALLGUARD_VERDICT"],
            "allow",
            "call {} of {caller}: {v:?}",
            i + 1
        );
    }
    let agi = fleet[MAX % fleet.len()].agi.unwrap();
    let v = call(agi, caller, &format!("{caller}-over")).await;
    assert_eq!(v["CALLGUARD_VERDICT"], "block", "{v:?}");
    assert_eq!(v["CALLGUARD_LIST"], "velocity");
    assert_eq!(v["CALLGUARD_RULE"], "burst");
    let reason = &v["CALLGUARD_REASON"];
    assert!(
        reason.contains(&format!(
            "{} calls from {caller} within 1m (max {MAX})",
            MAX + 1
        )),
        "{reason}"
    );
}

fn fleet(redis_url: &str) -> Vec<ServeProcess> {
    (0..3)
        .map(|_| server::spawn_binary(&yaml(redis_url, "500ms"), &[]))
        .collect()
}

#[tokio::test]
async fn a_burst_round_robin_over_three_instances_is_blocked_at_the_configured_count() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = fleet(&redis.url());
    counters_become(&fleet, "redis").await;
    burst_is_blocked_at_max(&fleet, "+15551110001").await;

    // The counter is Redis's, prefixed and expiring with its window.
    let key = "callguard:vel:main|burst|+15551110001";
    assert_eq!(redis.command(&["EXISTS", key]).unwrap(), ":1");
    let ttl: i64 = redis.command(&["PTTL", key]).unwrap()[1..].parse().unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");

    // A server that lost the script (SCRIPT FLUSH, as a restart does) gets it
    // again: counting stays shared, without an error.
    assert_eq!(redis.command(&["SCRIPT", "FLUSH"]).unwrap(), "+OK");
    burst_is_blocked_at_max(&fleet, "+15551110002").await;

    let mut counted = 0.0;
    for p in &fleet {
        let http = p.http.unwrap();
        let s = status(http).await;
        assert_eq!(s["velocity"]["redis"]["connected"], true, "{s}");
        assert_eq!(s["velocity"]["redis"]["errors"], 0, "{s}");
        let server_label = format!("redis=\"127.0.0.1:{}/0\"", redis.port());
        assert_eq!(
            server::scrape_sum(http, "callguard_velocity_redis_up", &[&server_label]).await,
            1.0
        );
        assert_eq!(
            server::scrape_sum(
                http,
                "callguard_velocity_counts_total",
                &["backend=\"local\""]
            )
            .await,
            0.0
        );
        counted += server::scrape_sum(
            http,
            "callguard_velocity_counts_total",
            &["backend=\"redis\""],
        )
        .await;
    }
    // Every call was counted in Redis, once (the blocked ones too).
    assert_eq!(counted, 2.0 * (MAX as f64 + 1.0), "counts in redis");
}

#[tokio::test]
async fn redis_stopped_mid_test_falls_back_to_local_counts_and_comes_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let fleet = fleet(&redis.url());
    counters_become(&fleet, "redis").await;
    // Two calls counted in the fleet's counter, then Redis dies.
    for (i, p) in fleet.iter().take(2).enumerate() {
        let v = call(p.agi.unwrap(), "+15552220001", &format!("before-{i}")).await;
        assert_eq!(v["CALLGUARD_VERDICT"], "allow");
    }
    redis.stop();

    // Every call is still decided; the first on an instance that has not yet
    // seen Redis go is the one that finds out (bounded by redis_timeout).
    for (i, p) in fleet.iter().enumerate() {
        let v = call(p.agi.unwrap(), "+15552220002", &format!("during-{i}")).await;
        assert_eq!(v["CALLGUARD_VERDICT"], "allow");
    }
    counters_become(&fleet, "local").await;
    for p in &fleet {
        let http = p.http.unwrap();
        let s = status(http).await;
        assert_eq!(s["velocity"]["redis"]["connected"], false, "{s}");
        assert!(
            s["velocity"]["redis"]["last_error"]["error"].is_string(),
            "{s}"
        );
        assert_eq!(
            server::scrape_sum(http, "callguard_velocity_redis_up", &[]).await,
            0.0
        );
        assert!(
            server::scrape_sum(http, "callguard_velocity_redis_errors_total", &[]).await >= 1.0
        );
    }
    // Counted in memory now: one instance still blocks a burst it sees alone.
    let lone = &fleet[..1];
    burst_is_blocked_at_max(lone, "+15552220003").await;
    let http = fleet[0].http.unwrap();
    assert!(
        server::scrape_sum(
            http,
            "callguard_velocity_counts_total",
            &["backend=\"local\""]
        )
        .await
            >= MAX as f64 + 1.0
    );

    // Redis back (empty, on the same port): every instance counts there again,
    // and a burst spread over the three is blocked at the rule's count.
    redis.restart();
    counters_become(&fleet, "redis").await;
    burst_is_blocked_at_max(&fleet, "+15552220004").await;
    for p in &fleet {
        let s = status(p.http.unwrap()).await;
        assert_eq!(s["velocity"]["redis"]["connected"], true, "{s}");
    }
    let server_label = format!("redis=\"127.0.0.1:{}/0\"", redis.port());
    assert_eq!(
        server::scrape_sum(http, "callguard_velocity_redis_up", &[&server_label]).await,
        1.0
    );
}

/// A "Redis" that accepts connections and answers `PING` but nothing else:
/// a server stalled on the counting script. Runs until the test ends.
async fn stalled_redis() -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // Answer each whole PING; anything else gets no answer, ever.
                    const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
                    while let Some(at) = seen.windows(PING.len()).position(|w| w == PING) {
                        seen.drain(..at + PING.len());
                        if stream.write_all(b"+PONG\r\n").await.is_err() {
                            return;
                        }
                    }
                    if seen.len() > 1 << 20 {
                        seen.clear();
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_stalled_redis_costs_a_call_its_timeout_not_its_decision() {
    let stalled = stalled_redis().await;
    let mut srv = server::start(&yaml(&format!("redis://{stalled}/0"), "20ms")).await;
    let http = srv.http();
    let shared = || {
        srv.running()
            .state
            .extras
            .velocity
            .shared()
            .expect("velocity_limits.redis is set")
            .clone()
    };
    // The keeper connects (the PING is answered): the circuit closes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !shared().connected() {
        assert!(tokio::time::Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Each call's count gets no answer: the call is decided all the same,
    // counted in memory, so the burst is still blocked at the rule's count.
    for i in 0..MAX {
        let v = call(srv.agi(), "+15553330001", &format!("stalled-{i}")).await;
        assert_eq!(v["CALLGUARD_VERDICT"], "allow", "{v:?}");
    }
    let v = call(srv.agi(), "+15553330001", "stalled-over").await;
    assert_eq!(v["CALLGUARD_VERDICT"], "block", "{v:?}");
    assert_eq!(v["CALLGUARD_RULE"], "burst");

    let s = shared().status();
    assert!(s.errors >= 1, "{s:?}");
    let why = s.last_error.expect("an error is remembered").error;
    assert!(why.contains("no answer within 20ms"), "{why}");
    assert_eq!(
        server::scrape_sum(
            http,
            "callguard_velocity_counts_total",
            &["backend=\"local\""]
        )
        .await,
        MAX as f64 + 1.0
    );
    assert_eq!(
        server::scrape_sum(
            http,
            "callguard_velocity_counts_total",
            &["backend=\"redis\""]
        )
        .await,
        0.0
    );
    assert!(server::scrape_sum(http, "callguard_velocity_redis_errors_total", &[]).await >= 1.0);
    srv.stop().await;
}

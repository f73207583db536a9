//! What a reputation lookup adds to a decision (issue 25).
//!
//!     cargo bench --bench reputation
//!
//! - `decide/no_reputation`: a decision on a trunk with a reputation rule,
//!   without a lookup (the baseline);
//! - `decide/cache_hit`: the lookup answered from the cache, then the same
//!   decision with its answer (goal: the lookup adds < 1 µs);
//! - `late/budget_5ms`: a provider that answers too late: the call waits the
//!   budget (5 ms here) and goes on; against `late/sleep_5ms_baseline` (a bare
//!   5 ms timer), what is above it is the late path's own cost.

use std::hint::black_box;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use callguard::config::load_str;
use callguard::metrics::Metrics;
use callguard::policy::RuleSet;
use callguard::policy::decide::decide_screened;
use callguard::policy::reputation::CallerFacts;
use callguard::reputation::{How, Reputation};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};

fn yaml(addr: std::net::SocketAddr) -> String {
    format!(
        r#"
default_trunk: t
reputation:
  providers:
    - {{ name: fast, url: "http://{addr}/fast/{{e164}}", score: /score, timeout: 2s }}
trunks:
  t:
    blacklist:
      - {{ name: Bad, reputation: {{ above: 80 }} }}
      - {{ name: Busy, pattern: "+15550000001" }}
"#
    )
}

fn bench(c: &mut Criterion) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let app = axum::Router::new()
            .route(
                "/fast/{n}",
                axum::routing::get(|| async { axum::Json(serde_json::json!({"score": 90})) }),
            )
            .route(
                "/slow/{n}",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    axum::Json(serde_json::json!({"score": 90}))
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        addr
    });
    let cfg = load_str(&yaml(addr), Path::new("bench.yaml")).unwrap();
    let rs = RuleSet::compile(&cfg).unwrap();
    let t = rs.trunk_by_name("t").unwrap();
    let metrics = Metrics::new();
    let rep: Arc<Reputation> = {
        let _g = rt.enter();
        Reputation::start(&cfg.raw.reputation, Path::new("."), None, &metrics).unwrap()
    };
    // Only the slow provider, for the late path.
    let slow_yaml = format!(
        "reputation:\n  providers:\n    - {{ name: slow, url: \"http://{addr}/slow/{{e164}}\", score: /score, timeout: 50ms, breaker_failures: 1000000000, max_concurrent: 1000 }}\n"
    );
    let slow_cfg = load_str(&slow_yaml, Path::new("slow.yaml")).unwrap();
    let slow_metrics = Metrics::new();
    let slow: Arc<Reputation> = {
        let _g = rt.enter();
        Reputation::start(
            &slow_cfg.raw.reputation,
            Path::new("."),
            None,
            &slow_metrics,
        )
        .unwrap()
    };
    let caller = "+15551234567";
    // Fill the cache with a generous budget.
    let l = rt.block_on(rep.lookup(caller, Duration::from_secs(5)));
    assert_eq!(l.how, How::Live, "{l:?}");
    let now = Utc::now();

    let mut g = c.benchmark_group("decide");
    g.bench_function("no_reputation", |b| {
        b.iter(|| {
            let facts = CallerFacts {
                pbx_name: "",
                answer: None,
            };
            black_box(
                decide_screened(&rs, (t, None), black_box(caller), false, None, facts, now)
                    .unwrap(),
            )
        })
    });
    let waker = Waker::noop();
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            // A cache hit completes on its first poll: no runtime involved.
            let mut cx = Context::from_waker(waker);
            let fut = pin!(rep.lookup(black_box(caller), Duration::from_millis(30)));
            let Poll::Ready(l) = fut.poll(&mut cx) else {
                panic!("a cache hit never waits")
            };
            let facts = CallerFacts {
                pbx_name: "",
                answer: l.answer.as_deref(),
            };
            let d = decide_screened(&rs, (t, None), caller, false, None, facts, now).unwrap();
            assert!(d.rule.is_some());
            black_box(d)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("late");
    g.sample_size(10);
    // The baseline: a bare 5 ms timer on the same runtime (tokio's timer
    // has a resolution of 1 ms, so the call's wait rounds up the same way).
    g.bench_function("sleep_5ms_baseline", |b| {
        b.iter(|| rt.block_on(async { tokio::time::sleep(Duration::from_millis(5)).await }))
    });
    let mut n = 0u64;
    g.bench_function("budget_5ms", |b| {
        b.iter(|| {
            // A new number each time: never cached.
            n += 1;
            let number = format!("+1555{n:07}");
            let l = rt.block_on(slow.lookup(&number, Duration::from_millis(5)));
            assert_eq!(l.how, How::Late);
            black_box(l)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

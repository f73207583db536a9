//! Decision speed on a large generated rule set, loading time of a
//! 1,000,000-number list, and memory per exact number.
//!
//!     cargo bench --bench decide
//!
//! The rule set: 1,000,000 exact numbers + 10,000 prefixes + 1,000 wildcards +
//! 100 regexes (20 with look-around), decided against a mix of matching and
//! non-matching callers. Each decided call also increments its metrics
//! through the pre-resolved handles (`Metrics::count_call`), as a live call does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use callguard::action::Pbx;
use callguard::config;
use callguard::metrics::Metrics;
use callguard::policy::RuleSet;
use callguard::policy::decide::decide;
use callguard::state::State;
use chrono::Utc;

#[path = "support/harness.rs"]
mod harness;
use harness::Criterion;

/// Counts the bytes in use, so the memory a compiled rule set keeps can be
/// measured exactly (RSS does not shrink when memory is freed).
struct Counting;
static IN_USE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(new_size.wrapping_sub(layout.size()), Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + (self.next() % 10) as u8))
            .collect()
    }
}

fn exact_number(i: u64) -> String {
    // +1 2xx-9xx numbers, distinct by construction.
    format!("+1{}{:07}", 200 + (i / 10_000_000) % 800, i % 10_000_000)
}

fn generate(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let big = dir.join("spam-1m.csv");
    if !big.exists() {
        let mut s = String::with_capacity(50 << 20);
        s.push_str("rule_name,pattern,match_type,action,enabled\n");
        for i in 0..1_000_000u64 {
            let _ = writeln!(s, "spam-{i},{},exact,,true", exact_number(i * 7919));
        }
        std::fs::write(&big, s).unwrap();
    }
    let mut rng = Lcg(42);
    let mut rules = String::from("rule_name,pattern,match_type,action,enabled\n");
    for i in 0..10_000 {
        let _ = writeln!(
            rules,
            "prefix-{i},+{}{},starts_with,,true",
            2 + i % 7,
            rng.digits(4 + i % 4)
        );
    }
    for i in 0..1_000 {
        let _ = writeln!(
            rules,
            "wild-{i},+44{}__{}_,wildcard,,true",
            rng.digits(3),
            rng.digits(3)
        );
    }
    for i in 0..80 {
        let _ = writeln!(
            rules,
            "regex-{i},^\\+33{}[0-9]{{6}}$,regex,,true",
            rng.digits(3)
        );
    }
    for i in 0..20 {
        let _ = writeln!(
            rules,
            "lookaround-{i},^(?!\\+1)\\+9{}[0-9]+$,regex,,true",
            rng.digits(2)
        );
    }
    std::fs::write(dir.join("patterns.csv"), rules).unwrap();
    let cfg = dir.join("bench.yaml");
    std::fs::write(
        &cfg,
        "trunks:\n  main:\n    lists:\n      - { path: spam-1m.csv, as: blacklist }\n      - { path: patterns.csv, as: blacklist }\n",
    )
    .unwrap();
    cfg
}

fn load(cfg: &Path) -> RuleSet {
    let loaded = config::load(cfg).unwrap_or_else(|e| panic!("{e}"));
    RuleSet::compile(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

fn bench(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-rules");
    let cfg = generate(&dir);

    // Memory per exact number: the exact-number list alone, measured by RSS.
    let only_exact = dir.join("exact-only.yaml");
    std::fs::write(
        &only_exact,
        "trunks:\n  main:\n    lists:\n      - { path: spam-1m.csv, as: blacklist }\n",
    )
    .unwrap();
    let loaded = config::load(&only_exact).unwrap();
    let before = IN_USE.load(Ordering::Relaxed);
    let rs = RuleSet::compile(&loaded).unwrap();
    let kept = IN_USE.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!(
        "memory: {:.1} bytes per exact number ({:.1} MiB kept by the compiled set of 1,000,000 numbers)",
        kept as f64 / 1e6,
        kept as f64 / (1 << 20) as f64
    );
    drop(rs);
    drop(loaded);

    let start = Instant::now();
    let rs = load(&cfg);
    eprintln!(
        "load: 1,000,000 exact + 11,100 pattern rules read and compiled in {:.2} s",
        start.elapsed().as_secs_f64()
    );

    let trunk = rs.trunk_by_name("main").unwrap();
    let mut rng = Lcg(7);
    let callers: Vec<String> = (0..4096u64)
        .map(|i| match i % 6 {
            0 => exact_number((rng.next() % 1_000_000) * 7919), // exact hit
            1 => format!("+2{}", rng.digits(10)),               // prefix range
            2 => format!("+44{}", rng.digits(10)),              // wildcard range
            3 => format!("+33{}", rng.digits(9)),               // regex range
            4 => format!("+1{}", rng.digits(10)),               // mostly no match
            _ => format!("0{}", rng.digits(9)),                 // national format
        })
        .collect();
    let now = Utc::now();
    let state = State::new(load(&cfg), Arc::new(Metrics::new()), None);
    let snap = state.snapshot();

    // The goal is a median decision time: time each caller of the mix on its
    // own and take the median (and 99th percentile) over callers.
    let mut per_caller: Vec<f64> = callers
        .iter()
        .map(|caller| {
            const RUNS: u32 = 200;
            let start = Instant::now();
            for _ in 0..RUNS {
                black_box(decide(&rs, trunk, black_box(caller), false, now).unwrap());
            }
            start.elapsed().as_nanos() as f64 / f64::from(RUNS)
        })
        .collect();
    per_caller.sort_by(f64::total_cmp);
    let pct = |p: f64| per_caller[((per_caller.len() - 1) as f64 * p) as usize];
    eprintln!(
        "decision per caller over the mix: median {:.0} ns, p90 {:.0} ns, p99 {:.0} ns",
        pct(0.5),
        pct(0.9),
        pct(0.99)
    );

    let mut g = c.benchmark_group("decide");
    let mut i = 0usize;
    g.bench_function("mixed_callers_1m_rules", |b| {
        b.iter(|| {
            i = (i + 1) % callers.len();
            black_box(decide(&rs, trunk, &callers[i], false, now).unwrap())
        })
    });
    let hit = exact_number(123 * 7919);
    g.bench_function("exact_hit", |b| {
        b.iter(|| black_box(decide(&rs, trunk, black_box(&hit), false, now).unwrap()))
    });
    g.bench_function("no_match", |b| {
        b.iter(|| black_box(decide(&rs, trunk, black_box("+15550000000"), false, now).unwrap()))
    });
    let mut j = 0usize;
    g.bench_function("mixed_with_metrics", |b| {
        b.iter(|| {
            j = (j + 1) % callers.len();
            let d = decide(&snap.rules, trunk, &callers[j], false, now).unwrap();
            state
                .metrics
                .count_call(&snap.handles, &snap.rules, Pbx::Asterisk, &d);
            black_box(d)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    g.bench_function("compile_1m_exact_plus_patterns", |b| {
        b.iter(|| black_box(load(&cfg)))
    });
    g.finish();
}

fn main() {
    bench(&mut Criterion::from_args());
}

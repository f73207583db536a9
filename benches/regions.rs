//! Callers in national format from fifteen regions, interleaved: the first
//! decision of each region in a fresh process, then the distribution of
//! decision times over many calls (p50 … p99.9, max) and a timed group (`support/harness.rs`).
//!
//!     cargo bench --bench regions
//!
//! Guards the cold-start guarantee: every region's dialling rules are
//! compiled with the rule set, so the first national-format caller of a
//! region costs what the millionth does (it used to cost 1–190 ms while the
//! phonenumber metadata loaded and its regexes compiled behind one lock).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use callguard::config;
use callguard::policy::RuleSet;
use callguard::policy::decide::decide;
use chrono::Utc;

#[path = "support/harness.rs"]
mod harness;
use harness::Criterion;

// Region, a national-format number of that region (the last four digits
// vary per call), and its E.164 form.
include!("../tests/fixtures/national_formats.rs");
const REGIONS: &[(&str, &str, &str)] = NATIONAL_FORMATS;

fn rule_set() -> RuleSet {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-regions");
    std::fs::create_dir_all(&dir).unwrap();
    let mut y = String::from("normalize: { default_region: US }\ntrunks:\n");
    for (r, _, e164) in REGIONS {
        // An exact number, and a range covering a tenth of the callers.
        let range = format!("{}*", &e164[..e164.len() - 3]);
        let _ = write!(
            y,
            "  {r}:\n    region: {r}\n    blacklist:\n      - {{ name: {r}-exact, pattern: \"{e164}\" }}\n      - {{ name: {r}-range, pattern: \"{range}\" }}\n"
        );
    }
    let cfg = dir.join("regions.yaml");
    std::fs::write(&cfg, y).unwrap();
    let loaded = config::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    RuleSet::compile(&loaded).unwrap_or_else(|e| panic!("{e}"))
}

/// The region's number with its last four digits replaced by `n`.
fn caller(national: &str, n: u32) -> String {
    let mut digits_seen = 0;
    let mut out: Vec<char> = national.chars().collect();
    let tail = format!("{:04}", n % 10_000);
    let mut tail = tail.chars().rev();
    for c in out.iter_mut().rev() {
        if c.is_ascii_digit() && digits_seen < 4 {
            *c = tail.next().unwrap();
            digits_seen += 1;
        }
    }
    out.into_iter().collect()
}

fn bench(c: &mut Criterion) {
    let start = Instant::now();
    let rs = rule_set();
    eprintln!(
        "compile: 15 regions' rules and dialling metadata in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    let now = Utc::now();
    let trunks: Vec<usize> = REGIONS
        .iter()
        .map(|(r, _, _)| rs.trunk_by_name(r).unwrap())
        .collect();

    // The first call of each region in this process.
    let mut first = Vec::new();
    for (i, (r, national, _)) in REGIONS.iter().enumerate() {
        let t = Instant::now();
        let d = decide(&rs, trunks[i], national, false, now).unwrap();
        first.push((r, t.elapsed().as_nanos()));
        assert_eq!(d.verdict.as_str(), "block", "{r}");
    }
    let worst = first.iter().max_by_key(|(_, ns)| *ns).unwrap();
    eprintln!(
        "first national-format call per region: worst {} at {} ns; all: {}",
        worst.0,
        worst.1,
        first
            .iter()
            .map(|(r, ns)| format!("{r} {ns}"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    // Interleaved: call i is region i % 15, number varying.
    const CALLS: u32 = 300_000;
    let callers: Vec<(usize, String)> = (0..4096u32)
        .map(|i| {
            let k = i as usize % REGIONS.len();
            (
                trunks[k],
                caller(REGIONS[k].1, i.wrapping_mul(2_654_435_761)),
            )
        })
        .collect();
    let mut times = Vec::with_capacity(CALLS as usize);
    for i in 0..CALLS {
        let (t, c) = &callers[i as usize % callers.len()];
        let s = Instant::now();
        black_box(decide(&rs, *t, black_box(c), false, now).unwrap());
        times.push(s.elapsed().as_nanos() as u64);
    }
    times.sort_unstable();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p) as usize];
    eprintln!(
        "15 regions interleaved, {CALLS} decisions: p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(0.999),
        times[times.len() - 1]
    );

    let mut g = c.benchmark_group("regions");
    let mut i = 0usize;
    g.bench_function("national_15_regions_interleaved", |b| {
        b.iter(|| {
            i = (i + 1) % callers.len();
            let (t, c) = &callers[i];
            black_box(decide(&rs, *t, c, false, now).unwrap())
        })
    });
    g.finish();
}

fn main() {
    bench(&mut Criterion::from_args());
}

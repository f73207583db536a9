//! The benches' timing loop: what the benches used of criterion (groups of named functions
//! timed over many iterations), without its 19 packages in Cargo.lock (issue 27).
//!
//! `cargo bench --bench NAME [-- FILTER]`: each function is warmed up for a second, then
//! timed in `sample_size` samples (50 by default, about 3 s in all, at least one iteration
//! each); it prints the mean, the median sample and the fastest and slowest samples, per
//! iteration. Without `--bench` (`cargo test --benches`) each function runs once, as a test
//! that it works. The benches' own percentile figures are printed by the benches themselves.
#![allow(dead_code)]

use std::time::{Duration, Instant};

const WARM_UP: Duration = Duration::from_secs(1);
const MEASURE: Duration = Duration::from_secs(3);

pub struct Criterion {
    /// `--bench` given: measure; otherwise run each function once.
    measure: bool,
    filter: Option<String>,
}

impl Criterion {
    /// From the command line cargo passes (`--bench`, an optional name filter).
    pub fn from_args() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Criterion {
            measure: args.iter().any(|a| a == "--bench"),
            filter: args.into_iter().find(|a| !a.starts_with('-')),
        }
    }

    pub fn benchmark_group(&mut self, name: &str) -> Group<'_> {
        Group {
            c: self,
            name: name.to_string(),
            sample_size: 50,
        }
    }
}

pub struct Group<'a> {
    c: &'a Criterion,
    name: String,
    sample_size: usize,
}

/// Runs the routine given to [`Bencher::iter`] `iters` times and times it.
pub struct Bencher {
    iters: u64,
    elapsed: Duration,
}

impl Bencher {
    pub fn iter<R>(&mut self, mut routine: impl FnMut() -> R) {
        let start = Instant::now();
        for _ in 0..self.iters {
            std::hint::black_box(routine());
        }
        self.elapsed = start.elapsed();
    }
}

impl Group<'_> {
    pub fn sample_size(&mut self, n: usize) {
        self.sample_size = n.max(1);
    }

    pub fn bench_function(&mut self, name: &str, mut f: impl FnMut(&mut Bencher)) {
        let id = format!("{}/{name}", self.name);
        if self
            .c
            .filter
            .as_ref()
            .is_some_and(|w| !id.contains(w.as_str()))
        {
            return;
        }
        let mut run = |iters: u64| {
            let mut b = Bencher {
                iters,
                elapsed: Duration::ZERO,
            };
            f(&mut b);
            b.elapsed
        };
        if !self.c.measure {
            run(1);
            println!("{id}: ok (one run; `cargo bench` measures)");
            return;
        }
        // Warm-up, doubling the iterations, to estimate one iteration's time.
        let (mut iters, mut spent, mut done) = (1u64, Duration::ZERO, 0u64);
        while spent < WARM_UP {
            spent += run(iters);
            done += iters;
            iters = iters.saturating_mul(2);
        }
        let per_iter = spent.as_secs_f64() / done as f64;
        let per_sample = MEASURE.as_secs_f64() / self.sample_size as f64;
        let iters = ((per_sample / per_iter) as u64).max(1);
        let mut ns: Vec<f64> = (0..self.sample_size)
            .map(|_| run(iters).as_secs_f64() * 1e9 / iters as f64)
            .collect();
        ns.sort_by(f64::total_cmp);
        let mean = ns.iter().sum::<f64>() / ns.len() as f64;
        println!(
            "{id}: mean {}, median {}, fastest {}, slowest {} ({} samples × {iters} iterations)",
            show(mean),
            show(ns[ns.len() / 2]),
            show(ns[0]),
            show(ns[ns.len() - 1]),
            ns.len()
        );
    }

    pub fn finish(self) {}
}

/// `812 ns`, `1.24 µs`, `3.10 ms`, `2.05 s`.
fn show(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

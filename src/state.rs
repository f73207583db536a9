//! The running service's shared state: the current rule set (hot-swapped as
//! a whole), metrics, and the decision log.
//!
//! A call takes one snapshot when it starts and decides with it even if a
//! reload swaps a new one in meanwhile: no call ever sees half a rule set.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use prometheus::IntCounter;

use crate::action::Pbx;
use crate::calllog::CallLogHandle;
use crate::metrics::Metrics;
use crate::policy::RuleSet;
use crate::policy::decide::{DecidedBy, Decision};
use crate::policy::index::RuleId;

/// A rule set plus what was derived from it for the call path.
pub struct Snapshot {
    pub rules: RuleSet,
    /// Increases with every successful load.
    pub version: u64,
    pub loaded_at: DateTime<Utc>,
    /// Where the rules came from (a git commit, when the source is git).
    pub source: Option<String>,
    handles: MetricHandles,
}

impl Snapshot {
    pub fn new(rules: RuleSet, version: u64, source: Option<String>) -> Snapshot {
        let handles = MetricHandles::new(&rules);
        Snapshot {
            rules,
            version,
            loaded_at: Utc::now(),
            source,
            handles,
        }
    }
}

const LISTS: [DecidedBy; 6] = [
    DecidedBy::Protected,
    DecidedBy::SystemBlacklist,
    DecidedBy::Whitelist,
    DecidedBy::Blacklist,
    DecidedBy::Exclusive,
    DecidedBy::Default,
];

/// Counter handles resolved on first use and then reused without touching the
/// metric vector's lock: one cell per (pbx, trunk, list, action) for
/// `callguard_calls_total` and per (trunk, rule label) for rule hits.
struct MetricHandles {
    actions: usize,
    calls: Vec<OnceLock<IntCounter>>,
    /// Inline rules have a cell each; bulk list entries share their list's.
    hit_slot: HashMap<RuleId, usize>,
    bulk_slot: HashMap<String, usize>,
    slots: usize,
    hits: Vec<OnceLock<IntCounter>>,
}

impl MetricHandles {
    fn new(rs: &RuleSet) -> MetricHandles {
        let actions = rs.actions.len();
        let trunks = rs.trunks.len();
        let mut hit_slot = HashMap::new();
        let mut bulk_slot = HashMap::new();
        let mut slots = 0;
        for id in 0..rs.rules.len() as RuleId {
            let o = rs.rules.origin(id);
            if o.bulk {
                if !bulk_slot.contains_key(&*o.list_name) {
                    bulk_slot.insert(o.list_name.to_string(), slots);
                    slots += 1;
                }
            } else {
                hit_slot.insert(id, slots);
                slots += 1;
            }
        }
        MetricHandles {
            actions,
            calls: (0..2 * trunks * LISTS.len() * actions)
                .map(|_| OnceLock::new())
                .collect(),
            hit_slot,
            bulk_slot,
            slots,
            hits: (0..trunks * slots).map(|_| OnceLock::new()).collect(),
        }
    }
}

/// Where the running service keeps things, and its optional stores.
#[derive(Default)]
pub struct Extras {
    /// The decision log's SQLite file (for queries by the API).
    pub log_path: Option<std::path::PathBuf>,
    /// List versions, for history and rollback.
    pub history: Option<Arc<crate::history::History>>,
}

/// State shared by every listener and the admin API.
pub struct State {
    current: ArcSwap<Snapshot>,
    pub metrics: Arc<Metrics>,
    pub log: Option<CallLogHandle>,
    pub extras: Extras,
    next_version: AtomicU64,
    /// The last reload error, for `GET /api/v1/status`.
    pub last_error: Mutex<Option<(DateTime<Utc>, Vec<String>)>>,
    /// Where the next installed rules come from (a git commit id), set by
    /// the rule source before it triggers a reload.
    pub source_label: Mutex<Option<String>>,
}

impl State {
    pub fn new(rules: RuleSet, metrics: Arc<Metrics>, log: Option<CallLogHandle>) -> Arc<State> {
        State::with_extras(rules, metrics, log, Extras::default())
    }

    pub fn with_extras(
        rules: RuleSet,
        metrics: Arc<Metrics>,
        log: Option<CallLogHandle>,
        extras: Extras,
    ) -> Arc<State> {
        let snap = Snapshot::new(rules, 1, None);
        let state = State {
            current: ArcSwap::from_pointee(snap),
            metrics,
            log,
            extras,
            next_version: AtomicU64::new(2),
            last_error: Mutex::new(None),
            source_label: Mutex::new(None),
        };
        state.publish_gauges();
        state
            .metrics
            .config_last_reload_success
            .set(Utc::now().timestamp());
        Arc::new(state)
    }

    /// The rule set calls should use now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Swaps in a new rule set; calls in progress keep theirs.
    pub fn install(&self, rules: RuleSet, source: Option<String>) -> u64 {
        let source = source.or_else(|| self.source_label.lock().ok().and_then(|s| s.clone()));
        if let Some(label) = &source {
            self.metrics.rules_source_info.reset();
            self.metrics
                .rules_source_info
                .with_label_values(&[label.as_str()])
                .set(1);
        }
        let version = self.next_version.fetch_add(1, Ordering::Relaxed);
        self.current
            .store(Arc::new(Snapshot::new(rules, version, source)));
        self.publish_gauges();
        self.metrics
            .config_last_reload_success
            .set(Utc::now().timestamp());
        if let Ok(mut e) = self.last_error.lock() {
            *e = None;
        }
        version
    }

    fn publish_gauges(&self) {
        let snap = self.snapshot();
        self.metrics.rules.reset();
        for l in &snap.rules.lists {
            self.metrics
                .rules
                .with_label_values(&[l.name.as_str()])
                .set(l.rules as i64);
        }
    }

    /// Counts a decided call without taking a lock shared by all calls.
    pub fn count_call(&self, snap: &Snapshot, pbx: Pbx, d: &Decision) {
        let h = &snap.handles;
        let rs = &snap.rules;
        let list_ix = LISTS.iter().position(|l| *l == d.list).unwrap_or(0);
        let ix = ((pbx.index() * rs.trunks.len() + d.trunk) * LISTS.len() + list_ix) * h.actions
            + d.action as usize;
        if let Some(cell) = h.calls.get(ix) {
            cell.get_or_init(|| {
                self.metrics.calls_total.with_label_values(&[
                    pbx.as_str(),
                    &rs.trunk(d.trunk).name,
                    d.verdict.as_str(),
                    d.list.as_str(),
                    d.action_name(rs),
                ])
            })
            .inc();
        }
        if let Some(rule) = d.rule {
            let origin = rs.rules.origin(rule);
            let slot = if origin.bulk {
                h.bulk_slot.get(&*origin.list_name).copied()
            } else {
                h.hit_slot.get(&rule).copied()
            };
            if let Some(slot) = slot
                && let Some(cell) = h.hits.get(d.trunk * h.slots + slot)
            {
                cell.get_or_init(|| {
                    self.metrics.rule_hits_total.with_label_values(&[
                        &rs.trunk(d.trunk).name,
                        d.list.as_str(),
                        rs.rules.metric_label(rule),
                    ])
                })
                .inc();
            }
        }
    }
}

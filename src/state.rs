//! The running service's shared state: the current rule set and the
//! service's live settings (hot-swapped as a whole), metrics, and the
//! decision log.
//!
//! A call takes one snapshot when it starts and decides with it even if a
//! reload swaps a new one in meanwhile: no call ever sees half a rule set.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};

use crate::calllog::CallLogHandle;
use crate::metrics::{MetricHandles, Metrics};
use crate::policy::RuleSet;
use crate::service::{BOOT_KEYS, BootValues, ServiceConfig};

/// A rule set and the service's settings, plus what was derived from them
/// for the call path.
pub struct Snapshot {
    pub rules: RuleSet,
    /// Listener limits and timeouts, the admin API's settings, watched files.
    pub service: ServiceConfig,
    /// Boot-time keys this load changed, which apply only after a restart
    /// (empty when the running service matches the file).
    pub restart_required: Vec<&'static str>,
    /// Increases with every successful load.
    pub version: u64,
    pub loaded_at: DateTime<Utc>,
    /// Where the rules came from (a git commit, when the source is git).
    pub source: Option<String>,
    /// Counter handles for this rule set's label sets.
    pub handles: MetricHandles,
    /// No rule can backtrack: calls are decided on the runtime, without
    /// the blocking pool (`RuleSet::decides_in_linear_time`).
    pub(crate) decide_inline: bool,
}

impl Snapshot {
    pub fn new(
        rules: RuleSet,
        service: ServiceConfig,
        version: u64,
        source: Option<String>,
    ) -> Snapshot {
        let handles = MetricHandles::new(&rules);
        let decide_inline = rules.decides_in_linear_time();
        Snapshot {
            rules,
            service,
            restart_required: Vec::new(),
            version,
            loaded_at: Utc::now(),
            source,
            handles,
            decide_inline,
        }
    }
}

/// Where the running service keeps things, and its optional stores.
#[derive(Default)]
pub struct Extras {
    /// The decision log's SQLite file (for queries by the API).
    pub log_path: Option<std::path::PathBuf>,
    /// The fleet's PostgreSQL log (`log.postgres`): decisions are read from it, not
    /// from `log_path` (which keeps the list history).
    pub log_postgres: Option<crate::calllog::PgTarget>,
    /// List versions, for history and rollback.
    pub history: Option<Arc<crate::store::ListVersions>>,
    /// Serialises list-file writes of the API and the reloader.
    pub list_lock: crate::list_edit::WriteLock,
    /// Velocity counters and temporary blocks.
    pub velocity: Arc<crate::velocity::Tracker>,
    /// The fleet's store of record for lists (`log.postgres`): the reloader
    /// lays its rows over the list files'; `None` keeps the files.
    pub fleet: Option<Arc<crate::list_edit::fleet::Fleet>>,
    /// Reputation lookups (`reputation.providers`), built at start.
    pub reputation: Option<Arc<crate::reputation::Reputation>>,
    /// The feature codes' memory: last caller per extension, dialled numbers.
    pub features: Arc<crate::store::features::Features>,
    /// The configuration file, for the feature codes' list writes.
    pub config_path: Option<std::path::PathBuf>,
    /// Applies a list write at once (the reloader, installed by `app`): a
    /// feature code's block is in force for the very next call.
    pub apply_now: std::sync::OnceLock<ApplyNow>,
}

/// Reloads now, for the reason given; the rule-set version or the problems.
pub type ApplyNow =
    Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, Result<u64, String>> + Send + Sync>;

/// State shared by every listener and the admin API.
pub struct State {
    current: ArcSwap<Snapshot>,
    pub metrics: Arc<Metrics>,
    pub log: Option<CallLogHandle>,
    pub extras: Extras,
    /// The unknown-trunk warning, said at most once a minute (`call`).
    pub unknown_trunk_warning: crate::outcome::Throttle,
    /// The boot-time keys the service started with: a reload compares them.
    boot: BootValues,
    next_version: AtomicU64,
}

impl State {
    /// A state with the default service settings (benches, embedding).
    pub fn new(rules: RuleSet, metrics: Arc<Metrics>, log: Option<CallLogHandle>) -> Arc<State> {
        State::with_extras(
            rules,
            ServiceConfig::default(),
            metrics,
            log,
            Extras::default(),
        )
    }

    pub(crate) fn with_extras(
        rules: RuleSet,
        service: ServiceConfig,
        metrics: Arc<Metrics>,
        log: Option<CallLogHandle>,
        extras: Extras,
    ) -> Arc<State> {
        let boot = service.boot.clone();
        let snap = Snapshot::new(rules, service, 1, None);
        let state = State {
            current: ArcSwap::from_pointee(snap),
            metrics,
            log,
            extras,
            unknown_trunk_warning: Default::default(),
            boot,
            next_version: AtomicU64::new(2),
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

    /// Swaps in a new rule set and service settings, labelled with where
    /// they came from (a git commit); calls and connections in progress
    /// keep theirs. Boot-time keys that differ from the running ones are
    /// recorded in the snapshot's `restart_required` (the rest applies).
    pub fn install(&self, rules: RuleSet, service: ServiceConfig, source: Option<String>) -> u64 {
        if let Some(label) = &source {
            self.metrics.rules_source_info.reset();
            self.metrics
                .rules_source_info
                .with_label_values(&[label.as_str()])
                .set(1);
        }
        let version = self.next_version.fetch_add(1, Ordering::Relaxed);
        let pending = self.boot.changed(&service.boot);
        let mut snap = Snapshot::new(rules, service, version, source);
        snap.restart_required = pending;
        self.current.store(Arc::new(snap));
        self.publish_gauges();
        self.metrics
            .config_last_reload_success
            .set(Utc::now().timestamp());
        version
    }

    /// The store of record's gauges from the fleet's status (no-op without one).
    pub fn publish_store_gauges(&self) {
        let Some(f) = &self.extras.fleet else { return };
        let g = &self.metrics.store;
        g.up.set(i64::from(f.is_up()));
        g.rules_version
            .set(i64::try_from(f.applied_version()).unwrap_or(i64::MAX));
        g.store_rules_version
            .set(i64::try_from(f.store_version()).unwrap_or(i64::MAX));
        g.applied_at
            .set(f.applied_at().map_or(0, |t| t.timestamp()));
    }

    fn publish_gauges(&self) {
        let snap = self.snapshot();
        // Every key has its series (0 or 1), so an alert sees it change.
        for key in BOOT_KEYS {
            let pending = snap.restart_required.contains(key);
            self.metrics
                .restart_required
                .with_label_values(&[key])
                .set(i64::from(pending));
        }
        self.metrics.rules.reset();
        for l in &snap.rules.lists {
            self.metrics
                .rules
                .with_label_values(&[l.name.as_str()])
                .set(l.rules as i64);
        }
    }
}

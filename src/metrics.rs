//! Prometheus metrics, served as text on `GET /metrics`.
//!
//! Metric vectors resolve a label set through a lock inside the `prometheus`
//! crate, so the call path never asks for a label set by value: handles are
//! resolved once (when a rule set is installed, or once per listener) and the
//! call path only increments them. See [`MetricHandles`].

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::action::Via;
use crate::outcome::{ErrorKind, FailReason, Unscreened};
use crate::policy::RuleSet;
use crate::policy::decide::{DecidedBy, Decision};
use crate::policy::index::RuleId;
mod store;
pub use store::StoreGauges;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric family callguard exports, for the dashboard and alert checks.
pub const METRIC_NAMES: &[&str] = &[
    "callguard_calls_total",
    "callguard_rule_hits_total",
    "callguard_decision_duration_seconds",
    "callguard_session_duration_seconds",
    "callguard_sessions_active",
    "callguard_fail_open_total",
    "callguard_protocol_errors_total",
    "callguard_connections_refused_total",
    "callguard_config_reloads_total",
    "callguard_config_last_reload_success_timestamp_seconds",
    "callguard_rules",
    "callguard_build_info",
    "callguard_log_dropped_total",
    "callguard_rules_source_info",
    "callguard_unknown_trunk_total",
    "callguard_challenges_total",
    "callguard_velocity_blocks_total",
    "callguard_unscreened_total",
    "callguard_restart_required",
    "callguard_velocity_counts_total",
    "callguard_velocity_redis_up",
    "callguard_velocity_redis_errors_total",
    "callguard_store_up",
    "callguard_rules_version",
    "callguard_store_rules_version",
    "callguard_rules_applied_timestamp_seconds",
    "callguard_reputation_lookups_total",
    "callguard_reputation_breaker_state",
];

pub struct Metrics {
    registry: Registry,
    /// `metrics.tenant_label`: the decision metrics carry a `tenant` label.
    tenant_label: bool,
    pub calls_total: IntCounterVec,
    pub rule_hits_total: IntCounterVec,
    pub decision_duration: Histogram,
    pub session_duration: HistogramVec,
    pub sessions_active: IntGaugeVec,
    pub fail_open_total: IntCounterVec,
    pub protocol_errors_total: IntCounterVec,
    pub connections_refused_total: IntCounterVec,
    pub config_reloads_total: IntCounterVec,
    pub config_last_reload_success: IntGauge,
    pub rules: IntGaugeVec,
    pub build_info: IntGaugeVec,
    pub log_dropped_total: IntCounter,
    pub rules_source_info: IntGaugeVec,
    /// 1 for each boot-time key edited since start (`service::BOOT_KEYS`).
    pub restart_required: IntGaugeVec,
    pub unknown_trunk_total: IntCounterVec,
    pub challenges_total: IntCounterVec,
    pub velocity_blocks_total: IntCounterVec,
    pub unscreened_total: IntCounterVec,
    /// Velocity counts by where they were made: `redis` (shared by the
    /// fleet) or `local` (this instance's memory).
    pub velocity_counts_total: IntCounterVec,
    /// 1 while velocity counters are shared in Redis, 0 while Redis is slow
    /// or down; only with `velocity_limits.redis` (labelled by its server).
    pub velocity_redis_up: IntGaugeVec,
    pub velocity_redis_errors_total: IntCounter,
    /// The store of record's gauges (`log.postgres`).
    pub store: StoreGauges,
    pub reputation_lookups_total: IntCounterVec,
    pub reputation_breaker_state: IntGaugeVec,
}

impl Metrics {
    /// The metrics without the tenant label (`metrics.tenant_label: false`).
    pub fn new() -> Metrics {
        Metrics::with_tenant_label(false)
    }

    /// With `tenant_label`, `callguard_calls_total` and
    /// `callguard_rule_hits_total` carry a `tenant` label (`default` for the
    /// top level of the file). Fixed for the life of the registry.
    pub fn with_tenant_label(tenant_label: bool) -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let (calls_labels, hits_labels): (&[&str], &[&str]) = if tenant_label {
            (
                &["pbx", "trunk", "verdict", "list", "action", "tenant"],
                &["trunk", "list", "rule", "tenant"],
            )
        } else {
            (
                &["pbx", "trunk", "verdict", "list", "action"],
                &["trunk", "list", "rule"],
            )
        };
        let calls_total = counter_vec(
            "callguard_calls_total",
            "Calls decided, by PBX, trunk, verdict, deciding list and action.",
            calls_labels,
        );
        let rule_hits_total = counter_vec(
            "callguard_rule_hits_total",
            "Calls decided by a rule; entries of bulk list files count under the list's name.",
            hits_labels,
        );
        // 1 µs … 100 ms, roughly ×2.5 per bucket.
        let decision_duration = Histogram::with_opts(
            HistogramOpts::new(
                "callguard_decision_duration_seconds",
                "Time to decide one call (normalise, match, schedule).",
            )
            .buckets(vec![
                1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                1e-2, 2.5e-2, 5e-2, 0.1,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(decision_duration.clone()))
            .expect("unique metric");
        let session_duration = HistogramVec::new(
            HistogramOpts::new(
                "callguard_session_duration_seconds",
                "Length of PBX sessions, from connect to close.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 1800.0, 3600.0,
            ]),
            &["pbx"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(session_duration.clone()))
            .expect("unique metric");
        let sessions_active = gauge_vec(
            "callguard_sessions_active",
            "PBX sessions open now.",
            &["pbx"],
        );
        let fail_open_total = counter_vec(
            "callguard_fail_open_total",
            "Calls let through (or failed closed) because no decision could be made.",
            &["pbx", "reason"],
        );
        let protocol_errors_total = counter_vec(
            "callguard_protocol_errors_total",
            "Sessions ended by a protocol error, by kind.",
            &["pbx", "kind"],
        );
        let connections_refused_total = counter_vec(
            "callguard_connections_refused_total",
            "Connections refused (peer not allowed, too many connections, shutting down).",
            &["pbx", "reason"],
        );
        let config_reloads_total = counter_vec(
            "callguard_config_reloads_total",
            "Configuration reloads by result (success, failure).",
            &["result"],
        );
        let config_last_reload_success = IntGauge::new(
            "callguard_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(config_last_reload_success.clone()))
            .expect("unique metric");
        let rules = gauge_vec("callguard_rules", "Rules loaded, by list.", &["list"]);
        let build_info = gauge_vec(
            "callguard_build_info",
            "Always 1; the version label tells which build runs.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let log_dropped_total = IntCounter::new(
            "callguard_log_dropped_total",
            "Decision-log rows dropped because the writer queue was full.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(log_dropped_total.clone()))
            .expect("unique metric");
        let rules_source_info = gauge_vec(
            "callguard_rules_source_info",
            "Always 1; the commit label names the git commit the running rules came from.",
            &["commit"],
        );
        let restart_required = gauge_vec(
            "callguard_restart_required",
            "1 when the configuration file changed this boot-time key since start: the edit applies only after a restart (every other change was applied).",
            &["key"],
        );
        let unknown_trunk_total = counter_vec(
            "callguard_unknown_trunk_total",
            "Calls whose dialplan named a trunk the configuration does not have (another trunk was chosen).",
            &["pbx"],
        );
        let challenges_total = counter_vec(
            "callguard_challenges_total",
            "Challenges (\"press N\") by trunk and result: passed, failed, abandoned (the caller hung up).",
            &["trunk", "result"],
        );
        let velocity_blocks_total = counter_vec(
            "callguard_velocity_blocks_total",
            "Calls over a velocity rule's rate (each gets the rule's action), by trunk and rule.",
            &["trunk", "rule"],
        );
        let unscreened_total = counter_vec(
            "callguard_unscreened_total",
            "Calls the PBX sent that were never screened (the session never started, or the connection was refused), by reason.",
            &["pbx", "reason"],
        );
        let velocity_counts_total = counter_vec(
            "callguard_velocity_counts_total",
            "Calls counted by velocity rules, by backend: redis (shared by the fleet) or local (this instance alone: no velocity_limits.redis, or Redis slow or down).",
            &["backend"],
        );
        let velocity_redis_up = gauge_vec(
            "callguard_velocity_redis_up",
            "1 while velocity counters are shared in Redis (velocity_limits.redis), 0 while it is slow or down and this instance counts alone.",
            &["redis"],
        );
        let velocity_redis_errors_total = IntCounter::new(
            "callguard_velocity_redis_errors_total",
            "Failed Redis operations of the shared velocity counters: a call's count past velocity_limits.redis_timeout or refused, a failed ping or connection.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(velocity_redis_errors_total.clone()))
            .expect("unique metric");
        for backend in ["redis", "local"] {
            velocity_counts_total.with_label_values(&[backend]);
        }
        let reputation_lookups_total = counter_vec(
            "callguard_reputation_lookups_total",
            "Reputation lookups by provider and result: hit, stale (served while refreshed), live, negative (unknown number), late (after the budget), error, breaker_open, busy (no free slot).",
            &["provider", "result"],
        );
        let reputation_breaker_state = gauge_vec(
            "callguard_reputation_breaker_state",
            "Each reputation provider's circuit breaker: 0 closed, 1 open, 2 half-open.",
            &["provider"],
        );
        // Dashboards and alerts compare these series over time (`increase`,
        // `unless … offset`); a series born at its first event has no earlier
        // sample, so the first failure would go unseen. They start at 0.
        for result in ["success", "failure"] {
            config_reloads_total.with_label_values(&[result]);
        }
        for pbx in Via::ALL {
            for reason in [FailReason::NoTrunk, FailReason::Timeout, FailReason::Error] {
                fail_open_total.with_label_values(&[pbx.as_str(), reason.as_str()]);
            }
            unknown_trunk_total.with_label_values(&[pbx.as_str()]);
            for reason in Unscreened::ALL {
                unscreened_total.with_label_values(&[pbx.as_str(), reason.as_str()]);
            }
        }
        let store = StoreGauges::new(&registry);
        Metrics {
            tenant_label,
            store,
            rules_source_info,
            restart_required,
            registry,
            calls_total,
            rule_hits_total,
            decision_duration,
            session_duration,
            sessions_active,
            fail_open_total,
            protocol_errors_total,
            connections_refused_total,
            config_reloads_total,
            config_last_reload_success,
            rules,
            build_info,
            log_dropped_total,
            unknown_trunk_total,
            challenges_total,
            velocity_blocks_total,
            unscreened_total,
            velocity_counts_total,
            velocity_redis_up,
            velocity_redis_errors_total,
            reputation_lookups_total,
            reputation_breaker_state,
        }
    }

    /// Counts a decided call without taking a lock shared by all calls.
    pub fn count_call(&self, h: &MetricHandles, rs: &RuleSet, pbx: impl Into<Via>, d: &Decision) {
        let pbx: Via = pbx.into();
        let list_ix = LISTS.iter().position(|l| *l == d.list).unwrap_or(0);
        let action_slot = h.action_slot.get(d.action as usize).copied().unwrap_or(0);
        let ix = ((pbx.index() * rs.trunks.len() + d.trunk) * LISTS.len() + list_ix) * h.actions
            + action_slot;
        let tenant = || tenant_of(rs, d.trunk);
        if let Some(cell) = h.calls.get(ix) {
            cell.get_or_init(|| {
                let labels = [
                    pbx.as_str(),
                    &rs.trunk(d.trunk).name,
                    d.verdict.as_str(),
                    d.list.as_str(),
                    d.action_name(rs),
                    tenant(),
                ];
                self.calls_total
                    .with_label_values(&labels[..labels.len() - usize::from(!self.tenant_label)])
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
                    let labels = [
                        rs.trunk(d.trunk).name.as_ref(),
                        d.list.as_str(),
                        rs.rules.metric_label(rule),
                        tenant(),
                    ];
                    self.rule_hits_total.with_label_values(
                        &labels[..labels.len() - usize::from(!self.tenant_label)],
                    )
                })
                .inc();
            }
        }
    }

    /// Counts a call that was not decided (no trunk, an error, the deadline):
    /// in `calls_total` under `list="fail"` like every call, and in
    /// `fail_open_total` when it was let through. A rare path, so the label
    /// sets are resolved here rather than pre-resolved.
    /// A call no decision was made for; `tenant` is its tenant's name
    /// (`default` for the top level), a label only with `metrics.tenant_label`.
    pub(crate) fn count_undecided(
        &self,
        pbx: Via,
        (trunk, tenant): (&str, &str),
        verdict: &str,
        action: &str,
        why: FailReason,
        closed: bool,
    ) {
        let labels = [pbx.as_str(), trunk, verdict, "fail", action, tenant];
        self.calls_total
            .with_label_values(&labels[..labels.len() - usize::from(!self.tenant_label)])
            .inc();
        if !closed {
            self.fail_open_total
                .with_label_values(&[pbx.as_str(), why.as_str()])
                .inc();
        }
    }

    /// Counts a session that broke off.
    pub(crate) fn count_session_error(&self, pbx: crate::action::Pbx, kind: ErrorKind) {
        self.protocol_errors_total
            .with_label_values(&[pbx.as_str(), kind.as_str()])
            .inc();
    }

    /// Counts a call that was never screened. A rare path (label set resolved here).
    pub(crate) fn count_unscreened(&self, pbx: crate::action::Pbx, why: Unscreened) {
        self.unscreened_total
            .with_label_values(&[pbx.as_str(), why.as_str()])
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        // Encoding into a Vec cannot fail for well-formed families.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

const LISTS: [DecidedBy; 10] = [
    DecidedBy::Protected,
    DecidedBy::SystemBlacklist,
    DecidedBy::Whitelist,
    DecidedBy::Blacklist,
    DecidedBy::Exclusive,
    DecidedBy::Default,
    DecidedBy::Velocity,
    DecidedBy::UserAllow,
    DecidedBy::UserBlock,
    DecidedBy::Dialled,
];

/// The tenant label's value for a trunk: its tenant's name, `default` for the
/// top level of the file.
fn tenant_of(rs: &RuleSet, trunk: crate::policy::ruleset::TrunkId) -> &str {
    rs.tenants
        .get(rs.trunk(trunk).tenant)
        .map_or("default", |t| &*t.name)
}

/// Counter handles resolved on first use and then reused without touching the
/// metric vector's lock: one cell per (pbx, trunk, list, action name) for
/// `callguard_calls_total` (pbx: each [`Via`]) and per (trunk, rule label) for rule hits.
///
/// Actions are numbered by name, not by id: each tenant's actions are
/// actions of their own, so numbering by id would give every trunk a cell for
/// every tenant's actions (cells growing with tenants × tenants' actions);
/// by name, tenants that name their actions alike share the numbers, and a
/// trunk's cells grow only with the distinct names. The counted series are
/// the same either way (the label is the name).
pub struct MetricHandles {
    /// Distinct action names: the cells per (pbx, trunk, list).
    actions: usize,
    /// Action id → its name's number.
    action_slot: Vec<usize>,
    calls: Vec<OnceLock<IntCounter>>,
    /// Inline rules have a cell each; bulk list entries share their list's.
    hit_slot: HashMap<RuleId, usize>,
    bulk_slot: HashMap<String, usize>,
    slots: usize,
    hits: Vec<OnceLock<IntCounter>>,
}

impl MetricHandles {
    pub fn new(rs: &RuleSet) -> MetricHandles {
        let mut by_name: HashMap<&str, usize> = HashMap::new();
        let action_slot: Vec<usize> = rs
            .actions
            .iter()
            .map(|a| {
                let next = by_name.len();
                *by_name.entry(&*a.name).or_insert(next)
            })
            .collect();
        let actions = by_name.len().max(1);
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
            action_slot,
            calls: (0..Via::ALL.len() * trunks * LISTS.len() * actions)
                .map(|_| OnceLock::new())
                .collect(),
            hit_slot,
            bulk_slot,
            slots,
            hits: (0..trunks * slots).map(|_| OnceLock::new()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tenants that name their own actions alike share the handles' action
    /// numbers: the cells grow with trunks and distinct names, not with
    /// tenants × tenants' actions.
    #[test]
    fn tenants_actions_do_not_multiply_the_handles() {
        let mut yaml = String::from("trunks:\n  main: {}\ntenants:\n");
        for t in ["t1", "t2", "t3", "t4"] {
            yaml.push_str(&format!(
                "  {t}:\n    trunks: {{ main: {{}} }}\n    actions:\n      \
                 vm: {{ kind: reject, tone: busy }}\n      nope: {{ kind: reject, tone: congestion }}\n"
            ));
        }
        let cfg = crate::config::load_str(&yaml, std::path::Path::new("t.yaml")).unwrap();
        let rs = RuleSet::compile(&cfg).unwrap();
        let own = rs.actions.iter().filter(|a| &*a.name == "vm").count();
        assert_eq!(own, 4, "each tenant has its own action");
        let h = MetricHandles::new(&rs);
        let mut names: Vec<&str> = rs.actions.iter().map(|a| &*a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(h.actions, names.len());
        assert!(
            h.actions < rs.actions.len(),
            "{} {}",
            h.actions,
            rs.actions.len()
        );
        assert_eq!(
            h.calls.len(),
            Via::ALL.len() * rs.trunks.len() * LISTS.len() * names.len()
        );
        // Same name, same number; every id has one.
        let vm: Vec<usize> = (0..rs.actions.len())
            .filter(|&i| &*rs.actions[i].name == "vm")
            .map(|i| h.action_slot[i])
            .collect();
        assert!(vm.windows(2).all(|w| w[0] == w[1]), "{vm:?}");
    }
}

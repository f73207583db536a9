//! The store of record's gauges (`log.postgres`, the fleet's lists): is it
//! reachable, which rules version it holds, which one this instance runs and
//! since when. Without `log.postgres` they stay at 0.

use prometheus::{IntGauge, Registry};

pub(super) const NAMES: &[&str] = &[
    "callguard_store_up",
    "callguard_rules_version",
    "callguard_store_rules_version",
    "callguard_rules_applied_timestamp_seconds",
];

pub struct StoreGauges {
    /// 1 while the store answers (its listener or the last call).
    pub up: IntGauge,
    /// The store's rules version this instance runs.
    pub rules_version: IntGauge,
    /// The newest rules version the store has (as last seen).
    pub store_rules_version: IntGauge,
    /// When the running store rules were applied.
    pub applied_at: IntGauge,
}

impl StoreGauges {
    pub fn new(registry: &Registry) -> StoreGauges {
        let g = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        StoreGauges {
            up: g(
                NAMES[0],
                "1 while the list store of record (log.postgres) answers; 0 when it does not, or without one.",
            ),
            rules_version: g(
                NAMES[1],
                "The store's rules version (the newest list version id) this instance's running rules come from.",
            ),
            store_rules_version: g(
                NAMES[2],
                "The newest rules version the store holds, as this instance last saw it.",
            ),
            applied_at: g(
                NAMES[3],
                "Unix time this instance applied the store's rules version it runs.",
            ),
        }
    }
}

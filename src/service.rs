//! The service's own settings as installed with the rules: the listeners'
//! allow-lists, limits and timeouts, the admin API's settings (tokens…) and
//! the files the watcher follows. A reload swaps them in with the rule set,
//! so an edited `agi.allow` applies to the next connection, as the shipped
//! config promises; nothing of it is copied at start.
//!
//! Only what cannot change under a running service is boot-time: the bind
//! addresses and the storage backend (see [`BOOT_KEYS`]). A reload that finds
//! one of those edited applies everything else and reports the key as
//! "restart required" (log, `/api/v1/status`, `callguard_restart_required`).

use std::path::PathBuf;
use std::sync::Arc;

use ipnet::IpNet;

use crate::action::Pbx;
use crate::config::types::{AgiConfig, EdgeConfig, EslConfig, HttpConfig, ServerConfig};
use crate::config::{LoadedConfig, Problem, Problems};

/// Who may connect to a PBX listener and how many at once.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub allow: Vec<IpNet>,
}

impl Limits {
    fn parse(
        section: &str,
        max: usize,
        allow: &[serde_saphyr::Spanned<String>],
        file: &str,
    ) -> Result<Limits, Problem> {
        let allow = crate::config::allow::parse_allow(allow.iter().map(|a| a.value.as_str()))
            .map_err(|m| Problem::new(file, 0, 0, format!("{section}.{m}")))?;
        Ok(Limits {
            max_connections: max.max(1),
            allow,
        })
    }

    /// Loopback only, as the config's defaults.
    fn loopback(max: usize) -> Limits {
        Limits {
            max_connections: max.max(1),
            allow: vec![
                "127.0.0.0/8".parse().expect("CIDR"),
                "::1/128".parse().expect("CIDR"),
            ],
        }
    }
}

/// Every key read once at start, in the order they are reported. Bounded:
/// the metric's `key` label takes only these values.
pub(crate) const BOOT_KEYS: &[&str] = &[
    "listen.agi",
    "listen.esl",
    "listen.http",
    "log.path",
    "log.postgres",
    "log.postgres_password_env",
    "log.queue",
    "log.retention_days",
    "server.retention_interval",
    "source",
    "lists.url",
    "velocity_limits.redis",
    "velocity_limits.redis_password_env",
    "velocity_limits.redis_timeout",
    "reputation",
    "metrics.tenant_label",
];

/// The boot-time keys' values as loaded, in the order of [`BOOT_KEYS`],
/// compared rather than interpreted (a text per key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootValues(Vec<String>);

impl BootValues {
    fn of(cfg: &LoadedConfig) -> BootValues {
        let raw = &cfg.raw;
        // List subscriptions (a list with a `url:`) are started with the service.
        let subscriptions: Vec<_> = raw
            .lists
            .iter()
            .chain(raw.trunks.values().flat_map(|t| t.value.lists.iter()))
            .filter(|l| l.value.url.is_some())
            .map(|l| (&l.value.url, &l.value.path, l.value.refresh))
            .collect();
        let values = [
            format!("{:?}", raw.listen.agi),
            format!("{:?}", raw.listen.esl),
            format!("{:?}", raw.listen.http),
            cfg.resolve(&raw.log.path).display().to_string(),
            format!("{:?}", raw.log.postgres.as_ref().map(|p| &p.value)),
            format!("{:?}", raw.log.postgres_password_env),
            raw.log.queue.to_string(),
            raw.log.retention_days.to_string(),
            format!("{:?}", raw.server.retention_interval),
            format!("{:?}", raw.source),
            format!("{subscriptions:?}"),
            format!("{:?}", raw.velocity_limits.redis.as_ref().map(|r| &r.value)),
            format!("{:?}", raw.velocity_limits.redis_password_env),
            format!("{:?}", raw.velocity_limits.redis_timeout),
            {
                // Built at start (providers, cache): values only, not their places.
                let r = &raw.reputation;
                let providers: Vec<_> = r.providers.iter().map(|p| &p.value).collect();
                format!(
                    "{providers:?} {:?} {} {:?} {} {}",
                    r.budget, r.max_entries, r.serve_stale, r.prefetch_hits, r.set_caller_name
                )
            },
            raw.metrics.tenant_label.to_string(),
        ];
        BootValues(values.into())
    }

    /// The keys whose value in `new` differs from this one (the running one).
    pub fn changed(&self, new: &BootValues) -> Vec<&'static str> {
        if self.0.is_empty() || new.0.is_empty() {
            return Vec::new();
        }
        BOOT_KEYS
            .iter()
            .zip(self.0.iter().zip(&new.0))
            .filter(|(_, (a, b))| a != b)
            .map(|(k, _)| *k)
            .collect()
    }
}

/// The live settings of the service, installed with each rule set.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub agi: Arc<AgiConfig>,
    pub agi_limits: Limits,
    pub esl: Arc<EslConfig>,
    pub esl_limits: Limits,
    /// `edge:`: the SIP proxies' decision endpoint (its deadline).
    pub edge: Arc<EdgeConfig>,
    /// `edge.allow`, parsed: the proxies that may ask.
    pub edge_allow: Vec<IpNet>,
    /// The admin API's settings (tokens, limits, timeouts, hosts): who may
    /// read and change, read per request so a request never re-reads the file.
    pub http: HttpConfig,
    /// `server:` (grace period, reload debounce).
    pub server: ServerConfig,
    /// Files the rules were built from (config and lists), for the watcher.
    pub files: Vec<PathBuf>,
    /// The boot-time keys as this load read them.
    pub boot: BootValues,
    /// Each tenant's feature codes and numbers-you-called setting.
    pub features: Arc<FeatureSettings>,
}

/// One tenant's `feature_codes:` and `dialled_numbers:` (its own, else the
/// top-level ones), read by the feature endpoint and the call flow.
#[derive(Debug, Clone, Default)]
pub struct TenantFeatures {
    pub codes: crate::config::types::FeatureCodes,
    /// `dialled_numbers.allow_for`; `None`: off.
    pub dialled_allow_for: Option<std::time::Duration>,
}

/// [`TenantFeatures`] by tenant name (the default tenant is `default`).
#[derive(Debug, Clone, Default)]
pub struct FeatureSettings {
    pub top: TenantFeatures,
    pub tenants: std::collections::HashMap<String, TenantFeatures>,
}

impl FeatureSettings {
    pub(crate) fn of(cfg: &LoadedConfig) -> FeatureSettings {
        let raw = &cfg.raw;
        let top = TenantFeatures {
            codes: raw.feature_codes.clone(),
            dialled_allow_for: raw.dialled_numbers.as_ref().map(|d| d.allow_for),
        };
        let tenants = raw
            .tenants
            .iter()
            .map(|(name, t)| {
                let own = TenantFeatures {
                    codes: t.value.feature_codes.clone().unwrap_or(top.codes.clone()),
                    dialled_allow_for: t
                        .value
                        .dialled_numbers
                        .as_ref()
                        .map(|d| d.allow_for)
                        .or(top.dialled_allow_for),
                };
                (name.clone(), own)
            })
            .collect();
        FeatureSettings { top, tenants }
    }

    /// The settings of the tenant named `tenant` (unknown: the top-level ones).
    pub fn of_tenant(&self, tenant: &str) -> &TenantFeatures {
        self.tenants.get(tenant).unwrap_or(&self.top)
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let (agi, esl) = (AgiConfig::default(), EslConfig::default());
        ServiceConfig {
            agi_limits: Limits::loopback(agi.max_connections),
            esl_limits: Limits::loopback(esl.max_connections),
            agi: Arc::new(agi),
            esl: Arc::new(esl),
            edge_allow: Limits::loopback(1).allow,
            edge: Arc::new(EdgeConfig::default()),
            http: HttpConfig::default(),
            server: ServerConfig::default(),
            files: Vec::new(),
            boot: BootValues::default(),
            features: Default::default(),
        }
    }
}

impl ServiceConfig {
    /// The service's settings in a validated configuration.
    pub(crate) fn from_config(cfg: &LoadedConfig) -> Result<ServiceConfig, Problems> {
        let raw = &cfg.raw;
        let agi = Limits::parse("agi", raw.agi.max_connections, &raw.agi.allow, &cfg.file);
        let esl = Limits::parse("esl", raw.esl.max_connections, &raw.esl.allow, &cfg.file);
        let edge = Limits::parse("edge", 1, &raw.edge.allow, &cfg.file);
        let (agi_limits, esl_limits, edge_limits) = match (agi, esl, edge) {
            (Ok(a), Ok(e), Ok(x)) => (a, e, x),
            (a, e, x) => {
                return Err(Problems(
                    [a.err(), e.err(), x.err()].into_iter().flatten().collect(),
                ));
            }
        };
        Ok(ServiceConfig {
            agi: Arc::new(raw.agi.clone()),
            agi_limits,
            esl: Arc::new(raw.esl.clone()),
            esl_limits,
            edge: Arc::new(raw.edge.clone()),
            edge_allow: edge_limits.allow,
            http: raw.http.clone(),
            server: raw.server.clone(),
            files: cfg.files.clone(),
            boot: BootValues::of(cfg),
            features: Arc::new(FeatureSettings::of(cfg)),
        })
    }

    /// The allow-list and connection limit of `pbx`'s listener.
    pub fn limits(&self, pbx: Pbx) -> &Limits {
        match pbx {
            Pbx::Asterisk => &self.agi_limits,
            Pbx::FreeSwitch => &self.esl_limits,
        }
    }
}

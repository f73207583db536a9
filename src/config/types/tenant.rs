//! `tenants:` (one section per customer of a hosted PBX) and `users:` (an
//! extension with its own allow and block lists), both also at the top of
//! the file, which is the default tenant.

use super::*;

/// One tenant: the shape of the top-level rules (trunks, lists, actions,
/// schedules, users) for one customer of a hosted PBX. Recognised per call by
/// its FreeSWITCH domain (`domains:`) or by the dialplan (`?tenant=`,
/// `tenant=` AGI argument, `callguard_tenant` channel variable). The system
/// blacklist and the protected numbers stay above every tenant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// FreeSWITCH domains of the tenant (`variable_domain_name`).
    #[serde(default)]
    pub domains: Vec<String>,
    /// The normalisation region of the tenant's trunks (default: the top-level one).
    pub region: Option<S<String>>,
    #[serde(default)]
    pub default_trunk: Option<S<String>>,
    /// Default action for the tenant's blacklists and trunks that set none
    /// (default: the top-level `blocked_action`).
    #[serde(default)]
    pub blocked_action: Option<S<String>>,
    /// The tenant's own actions; the top-level ones are visible too (a
    /// tenant's action of the same name wins inside the tenant).
    #[serde(default)]
    pub actions: BTreeMap<String, S<ActionConfig>>,
    /// The tenant's own schedules (the top-level ones are visible too).
    #[serde(default)]
    pub schedules: BTreeMap<String, S<ScheduleConfig>>,
    /// Tenant-wide whitelist rules: every trunk of the tenant, after the
    /// trunk's own whitelist.
    #[serde(default)]
    pub whitelist: Vec<S<RuleConfig>>,
    /// Tenant-wide blacklist rules: every trunk of the tenant, after the
    /// trunk's own blacklist.
    #[serde(default)]
    pub blacklist: Vec<S<RuleConfig>>,
    /// Tenant-wide list files (`as: blacklist` or `as: whitelist`).
    #[serde(default)]
    pub lists: Vec<S<ListFileConfig>>,
    #[serde(default)]
    pub trunks: BTreeMap<String, S<TrunkConfig>>,
    #[serde(default)]
    pub users: BTreeMap<String, S<UserConfig>>,
    /// The tenant's feature codes (default: the top-level `feature_codes`).
    #[serde(default)]
    pub feature_codes: Option<FeatureCodes>,
    /// The tenant's numbers-you-called setting (default: the top-level one).
    #[serde(default)]
    pub dialled_numbers: Option<DialledNumbers>,
}

/// `users: { "101": { dids: ["+15551230101"], allow: lists/101-allow.csv,
/// block: lists/101-block.csv } }`: the key is the extension. Consulted for
/// calls to the extension or one of its DIDs, after the system blacklist and
/// before the trunk's lists. A list file that does not exist yet is an empty
/// list (the first change through the API creates it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    #[serde(default)]
    pub dids: Vec<String>,
    /// The user's allow list (a list file, CSV / JSON / XML).
    pub allow: Option<String>,
    /// The user's block list (a list file, CSV / JSON / XML).
    pub block: Option<String>,
    /// Default action for the user's block list (default: the trunk's blocked action).
    pub blocked_action: Option<S<String>>,
}

//! A tenant and its users as compiled: what a call to a hosted customer is decided with.

use super::*;

/// A user: an extension with its own allow and block lists.
#[derive(Debug)]
pub struct User {
    pub ext: Arc<str>,
    pub allow: ListIndex,
    pub block: ListIndex,
}

/// One tenant as compiled: its tenant-wide lists, users and trunk lookups.
#[derive(Debug, Default)]
pub struct Tenant {
    pub name: Arc<str>,
    pub whitelist: ListIndex,
    pub blacklist: ListIndex,
    pub users: Vec<User>,
    /// Extension and DIDs (as [`did_key`]s) → user.
    pub(crate) user_by_key: HashMap<String, UserId>,
    /// The tenant's trunks by their own name (not `TENANT.`-qualified) and DID.
    pub(crate) trunk_by_name: HashMap<String, TrunkId>,
    pub(crate) trunk_by_did: HashMap<String, TrunkId>,
    pub default_trunk: Option<TrunkId>,
}

impl Tenant {
    pub fn user(&self, id: UserId) -> &User {
        &self.users[id]
    }

    /// The user a call is for: the first callee candidate (dialled number,
    /// extension) that is a user's extension or DID.
    pub(crate) fn user_for<'a>(
        &self,
        callees: impl IntoIterator<Item = &'a str>,
    ) -> Option<UserId> {
        if self.users.is_empty() {
            return None;
        }
        callees.into_iter().find_map(|c| {
            let c = c.trim();
            self.user_by_key.get(c).copied().or_else(|| {
                let key = did_key(c);
                self.user_by_key.get(&key).copied().or_else(|| {
                    let alt = match key.strip_prefix('+') {
                        Some(rest) => rest.to_string(),
                        None => format!("+{key}"),
                    };
                    self.user_by_key.get(&alt).copied()
                })
            })
        })
    }
}

/// The inputs one tenant compiled from, kept so that a later reload whose
/// version of the tenant is broken compiles its last good one instead.
#[derive(Debug, Clone)]
pub struct TenantInputs {
    pub config: serde_saphyr::Spanned<crate::config::types::TenantConfig>,
    pub lists: Vec<crate::config::LoadedList>,
}

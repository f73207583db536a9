//! `feature_codes:` (issue 22 item 4: FreePBX's *30 / *31 / *32 from a
//! handset) and `dialled_numbers:` (item 5: numbers a user called are not
//! spam), at the top level (the default tenant, and every tenant that sets
//! none) and per tenant.

use super::*;

/// The codes a handset dials, FreePBX's by default. The shipped snippets
/// route `*3X…` to callguard's `feature` endpoint with the digits dialled
/// (`op=code`); callguard reads the operation from these codes, so changing a
/// code here needs no dialplan change as long as it still starts with `*3`
/// (another prefix needs the snippet's pattern changed too).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureCodes {
    /// Block a number: the code followed by the number (`*305551234567`).
    #[serde(default = "fc_block")]
    pub block: String,
    /// Remove a number from the user's block list: the code then the number.
    #[serde(default = "fc_unblock")]
    pub unblock: String,
    /// Block the last caller to this extension.
    #[serde(default = "fc_block_last")]
    pub block_last: String,
}

fn fc_block() -> String {
    "*30".into()
}
fn fc_unblock() -> String {
    "*31".into()
}
fn fc_block_last() -> String {
    "*32".into()
}

impl Default for FeatureCodes {
    fn default() -> Self {
        FeatureCodes {
            block: fc_block(),
            unblock: fc_unblock(),
            block_last: fc_block_last(),
        }
    }
}

/// `dialled_numbers: { allow_for: 30d }`: opt-in. A number a user dialled
/// (noted by the outbound snippet, `op=dialled`) is allowed for calls to
/// that user for `allow_for`, right after the user's own allow list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialledNumbers {
    #[serde(default = "d30days", deserialize_with = "duration")]
    pub allow_for: Duration,
}

fn d30days() -> Duration {
    Duration::from_secs(30 * 86_400)
}

//! Velocity rules as compiled: who counts together (`scope`), how many calls
//! in how long, and what happens past that. Pure data and pure window
//! arithmetic; the counters themselves live outside the policy core
//! (`crate::velocity`), and the call flow consults them around `decide`.

use std::sync::Arc;
use std::time::Duration;

use super::index::RuleId;
use super::number::Caller;
use super::ruleset::ActionId;

/// Which calls count together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One caller (its E.164 form, else as received).
    Caller,
    /// A number range: the first N digits of the E.164 number (`+` excluded).
    Prefix(u8),
    /// Every call of the trunk: a toll-fraud burst.
    Trunk,
}

impl Scope {
    /// `caller`, `prefix:N` (N from 1 to 15) or `trunk`.
    pub fn parse(s: &str) -> Result<Scope, String> {
        let s = s.trim();
        match s {
            "caller" => Ok(Scope::Caller),
            "trunk" => Ok(Scope::Trunk),
            _ => match s.strip_prefix("prefix:").map(|n| n.trim().parse::<u8>()) {
                Some(Ok(n)) if (1..=15).contains(&n) => Ok(Scope::Prefix(n)),
                _ => Err(format!(
                    "scope {s:?}: use caller, prefix:N (N from 1 to 15) or trunk"
                )),
            },
        }
    }

    /// The counter key of a call, or `None` when the call has nothing to
    /// count by (an anonymous caller has no number, nor range).
    pub fn key(self, caller: &Caller) -> Option<String> {
        match self {
            Scope::Trunk => Some("*".into()),
            _ if caller.anonymous || caller.raw.is_empty() => None,
            Scope::Caller => Some(caller.e164.clone().unwrap_or_else(|| caller.raw.clone())),
            Scope::Prefix(n) => {
                let number = caller.e164.as_deref().unwrap_or(&caller.raw);
                let digits: String = number.chars().filter(char::is_ascii_digit).collect();
                (digits.len() >= usize::from(n)).then(|| format!("+{}", &digits[..usize::from(n)]))
            }
        }
    }

    pub fn as_string(self) -> String {
        match self {
            Scope::Caller => "caller".into(),
            Scope::Prefix(n) => format!("prefix:{n}"),
            Scope::Trunk => "trunk".into(),
        }
    }
}

/// One compiled `velocity:` rule.
#[derive(Debug, Clone)]
pub struct VelocityRule {
    pub name: Arc<str>,
    /// Its row in the rule table (for the log's rule, metrics and reasons).
    pub rule: RuleId,
    pub scope: Scope,
    pub max: u32,
    pub per: Duration,
    pub action: ActionId,
    /// A temporary block for the key once over the rate.
    pub block_for: Option<Duration>,
    /// Declared at system level (counts every trunk's calls together).
    pub system: bool,
}

impl VelocityRule {
    /// The counter key of a call on `trunk` (system rules share keys across trunks).
    pub fn counter_key(&self, trunk: &str, caller: &Caller) -> Option<String> {
        let key = self.scope.key(caller)?;
        Some(if self.system {
            format!("*|{}|{key}", self.name)
        } else {
            format!("{trunk}|{}|{key}", self.name)
        })
    }
}

/// Counts one call at `now_ms` in a sliding window of `per_ms` kept as the
/// times of the last `max + 1` calls: returns the number of calls in the
/// window, this one included. At most `max + 1` times are kept, so a rule's
/// memory per key is bounded by its own `max`.
pub fn count(
    times: &mut std::collections::VecDeque<i64>,
    now_ms: i64,
    per_ms: i64,
    max: u32,
) -> u32 {
    while times.front().is_some_and(|&t| t <= now_ms - per_ms) {
        times.pop_front();
    }
    times.push_back(now_ms);
    while times.len() > max as usize + 1 {
        times.pop_front();
    }
    times.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn caller(raw: &str, e164: Option<&str>) -> Caller {
        Caller {
            raw: raw.into(),
            e164: e164.map(Into::into),
            anonymous: false,
        }
    }

    #[test]
    fn scopes_and_keys() {
        assert_eq!(Scope::parse("caller"), Ok(Scope::Caller));
        assert_eq!(Scope::parse("prefix:6"), Ok(Scope::Prefix(6)));
        assert_eq!(Scope::parse("trunk"), Ok(Scope::Trunk));
        assert!(Scope::parse("prefix:0").is_err());
        assert!(Scope::parse("area").is_err());
        let c = caller("5551234567", Some("+15551234567"));
        assert_eq!(Scope::Caller.key(&c).as_deref(), Some("+15551234567"));
        assert_eq!(Scope::Prefix(4).key(&c).as_deref(), Some("+1555"));
        assert_eq!(Scope::Trunk.key(&c).as_deref(), Some("*"));
        let anon = Caller {
            raw: "Anonymous".into(),
            e164: None,
            anonymous: true,
        };
        assert_eq!(Scope::Caller.key(&anon), None);
        assert_eq!(Scope::Trunk.key(&anon).as_deref(), Some("*"));
    }

    #[test]
    fn sliding_window_counts_and_forgets() {
        let mut t = VecDeque::new();
        // max 3 per 10 s: calls at 0, 1, 2, 3 s → the fourth is over.
        assert_eq!(count(&mut t, 0, 10_000, 3), 1);
        assert_eq!(count(&mut t, 1_000, 10_000, 3), 2);
        assert_eq!(count(&mut t, 2_000, 10_000, 3), 3);
        assert_eq!(count(&mut t, 3_000, 10_000, 3), 4);
        assert!(t.len() <= 4);
        // 10 s after the second call, only the later ones remain.
        assert_eq!(count(&mut t, 11_500, 10_000, 3), 3);
        assert_eq!(count(&mut t, 60_000, 10_000, 3), 1);
    }
}

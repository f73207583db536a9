//! Velocity rules as compiled: who counts together (`scope`), how many calls
//! in how long, and what happens past that. Pure data and pure window
//! arithmetic; the counters themselves live outside the policy core
//! (`crate::velocity`, whose `apply` consults them around `decide`).
//!
//! A leaf of `policy`: the rule set and its compiler both import it, it
//! imports neither.

use std::sync::Arc;
use std::time::Duration;

use super::ids::ActionId;
use super::index::RuleId;
use super::number::Caller;

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

    pub(crate) fn as_string(self) -> String {
        match self {
            Scope::Caller => "caller".into(),
            Scope::Prefix(n) => format!("prefix:{n}"),
            Scope::Trunk => "trunk".into(),
        }
    }
}

/// A trunk's velocity policy as compiled: its rules, and the action a
/// caller verified by a challenge gets instead of being challenged again
/// (`pass`, resolved once here rather than looked up on every call).
#[derive(Debug, Clone)]
pub struct TrunkVelocity {
    /// The trunk's own rules, then the system-level ones.
    pub rules: Vec<VelocityRule>,
    pub trusted_action: ActionId,
}

/// What a counter or a temporary block is kept under. Typed, so that no
/// two kinds can collide and a learned entry is told from a rule's by its
/// variant; its text (`Display`, [`Key::parse`]) is only the stored form
/// and the admin API's name for a block, unchanged from the string keys
/// earlier versions wrote (`trunk|rule|subject`, `learned-block|caller`, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A velocity rule's counter and block. `trunk` is `None` for a
    /// system-level rule (its calls count together across trunks, `*`).
    Rule {
        trunk: Option<Arc<str>>,
        rule: Arc<str>,
        /// The caller, `+1555` range or `*` (the whole trunk).
        subject: String,
    },
    /// A caller who kept failing challenges (learned, `learned-block|…`).
    LearnedBlock(String),
    /// A caller who passed a challenge (learned, `learned-trust|…`).
    LearnedTrust(String),
    /// A caller's failed challenges of one action (`learn-fails|action|caller`).
    LearnFails { action: Arc<str>, caller: String },
}

const LEARNED_BLOCK: &str = "learned-block";
const LEARNED_TRUST: &str = "learned-trust";
const LEARN_FAILS: &str = "learn-fails";

impl Key {
    /// The key a stored or listed text names; `None` for text no key
    /// writes. A rule's subject never has a `|`; its trunk is taken up to
    /// the first `|`, its name from there to the last.
    pub fn parse(s: &str) -> Option<Key> {
        let (head, rest) = s.split_once('|')?;
        match head {
            LEARNED_BLOCK => Some(Key::LearnedBlock(rest.to_string())),
            LEARNED_TRUST => Some(Key::LearnedTrust(rest.to_string())),
            LEARN_FAILS => {
                let (action, caller) = rest.rsplit_once('|')?;
                Some(Key::LearnFails {
                    action: action.into(),
                    caller: caller.to_string(),
                })
            }
            _ => {
                let (rule, subject) = rest.rsplit_once('|')?;
                Some(Key::Rule {
                    trunk: (head != "*").then(|| head.into()),
                    rule: rule.into(),
                    subject: subject.to_string(),
                })
            }
        }
    }

    /// Who the key is about: a rule's caller, range or `*`, a learned
    /// entry's caller.
    pub fn subject(&self) -> &str {
        match self {
            Key::Rule { subject, .. } => subject,
            Key::LearnedBlock(c) | Key::LearnedTrust(c) => c,
            Key::LearnFails { caller, .. } => caller,
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Rule {
                trunk,
                rule,
                subject,
            } => write!(f, "{}|{rule}|{subject}", trunk.as_deref().unwrap_or("*")),
            Key::LearnedBlock(c) => write!(f, "{LEARNED_BLOCK}|{c}"),
            Key::LearnedTrust(c) => write!(f, "{LEARNED_TRUST}|{c}"),
            Key::LearnFails { action, caller } => write!(f, "{LEARN_FAILS}|{action}|{caller}"),
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
    pub(crate) fn counter_key(&self, trunk: &Arc<str>, caller: &Caller) -> Option<Key> {
        Some(Key::Rule {
            trunk: (!self.system).then(|| trunk.clone()),
            rule: self.name.clone(),
            subject: self.scope.key(caller)?,
        })
    }
}

/// Counts one call at `now_ms` in a sliding window of `per_ms` kept as the
/// times of the last `max + 1` calls: returns the number of calls in the
/// window, this one included. At most `max + 1` times are kept, so a rule's
/// memory per key is bounded by its own `max`.
pub(crate) fn count(
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
    fn keys_keep_their_stored_text() {
        let c = caller("5551234567", Some("+15551234567"));
        let rule = |system| VelocityRule {
            name: "burst".into(),
            rule: 0,
            scope: Scope::Caller,
            max: 3,
            per: Duration::from_secs(60),
            action: 0,
            block_for: None,
            system,
        };
        let trunk: Arc<str> = "support".into();
        let own = rule(false).counter_key(&trunk, &c).unwrap();
        assert_eq!(own.to_string(), "support|burst|+15551234567");
        let sys = rule(true).counter_key(&trunk, &c).unwrap();
        assert_eq!(sys.to_string(), "*|burst|+15551234567");
        let learned = [
            Key::LearnedBlock("+15551234567".into()),
            Key::LearnedTrust("+15551234567".into()),
            Key::LearnFails {
                action: "captcha".into(),
                caller: "+15551234567".into(),
            },
        ];
        assert_eq!(learned[0].to_string(), "learned-block|+15551234567");
        assert_eq!(learned[2].to_string(), "learn-fails|captcha|+15551234567");
        for k in learned.into_iter().chain([own, sys]) {
            assert_eq!(Key::parse(&k.to_string()), Some(k));
        }
        assert_eq!(Key::parse("no bar"), None);
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

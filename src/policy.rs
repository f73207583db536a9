//! The policy core: pure functions over an immutable compiled rule set.
//! No sockets, no files, no clock: the time of a decision is a parameter.

pub mod attest;
pub(crate) mod compile;
pub mod decide;
pub(crate) mod explain;
pub(crate) mod feature;
pub(crate) mod ids;
pub(crate) mod index;
pub(crate) mod number;
pub(crate) mod pattern;
pub mod reputation;
pub(crate) mod ruleset;
pub(crate) mod schedule;
pub mod tester;
pub(crate) mod velocity;

pub use decide::{DecidedBy, Decision, Verdict, decide};
pub use ruleset::RuleSet;

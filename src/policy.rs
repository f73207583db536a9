//! The policy core: pure functions over an immutable compiled rule set.
//! No sockets, no files, no clock: the time of a decision is a parameter.

pub mod attest;
pub(crate) mod compile;
pub mod decide;
pub(crate) mod explain;
pub(crate) mod ids;
pub mod index;
pub mod number;
pub mod pattern;
pub mod ruleset;
pub mod schedule;
pub mod tester;
pub mod velocity;

pub use decide::{DecidedBy, Decision, Verdict, decide};
pub use ruleset::RuleSet;

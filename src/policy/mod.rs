//! The policy core: pure functions over an immutable compiled rule set.

pub mod number;
pub mod schedule;

//! The ids the compiled rule set hands out, in a leaf module so that the
//! rule set, its compiler and the velocity rules can all name them without
//! importing one another.

/// An action of the rule set (`RuleSet::action`).
pub(crate) type ActionId = u16;
/// A trunk of the rule set (`RuleSet::trunk`).
pub(crate) type TrunkId = usize;

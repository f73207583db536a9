//! esl

pub mod codec;
pub mod multiset;
pub mod recipe;
pub mod session;

//! esl

pub mod codec;
pub mod recipe;
pub mod session;

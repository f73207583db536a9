//! esl

pub mod codec;
pub mod session;

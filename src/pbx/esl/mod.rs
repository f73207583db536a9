//! esl

pub mod codec;

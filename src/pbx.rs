//! The wire protocols: each knows its PBX's bytes and nothing of rules.

pub mod agi;
pub mod esl;

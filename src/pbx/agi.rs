//! FastAGI: Asterisk's `AGI(agi://…)` connects per call.

pub mod codec;
pub mod command;
pub(crate) mod env;
pub mod mset;
pub(crate) mod recipe;
pub(crate) mod reply;
pub(crate) mod session;

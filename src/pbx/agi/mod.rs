//! FastAGI: Asterisk's `AGI(agi://…)` connects per call.

pub mod codec;
pub mod command;
pub mod env;
pub mod mset;
pub mod recipe;
pub mod reply;
pub mod session;

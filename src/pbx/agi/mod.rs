//! agi

pub mod codec;
pub mod command;
pub mod env;
pub mod reply;

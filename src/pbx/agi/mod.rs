//! agi

pub mod codec;
pub mod session;

//! agi

pub mod codec;

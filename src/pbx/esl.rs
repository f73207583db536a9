//! Outbound Event Socket: FreeSWITCH's `socket` application connects per call.
//!
//! `message` (frames in, typed) and `command` (commands out) are the wire
//! format, `codec` frames the byte stream, `session` drives one call through
//! `call::handle`, `recipe` turns plan steps into dialplan applications, and
//! `multiset` packs variables into one `multiset`.

pub mod codec;
pub(crate) mod command;
pub(crate) mod message;
pub mod multiset;
pub(crate) mod recipe;
pub(crate) mod session;
pub(crate) use session::release;

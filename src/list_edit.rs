//! The list store, the upper layer of rule lists: the one validated write
//! path (API, CLI, `block`) that checks a change against the whole
//! configuration, writes it atomically and records it in the history; and
//! "block this caller" from the call log.
//!
//! The files themselves (row type, formats, diffs, import planning) are
//! [`crate::list_io`], below the configuration; their names are re-exported
//! here for the paths the tests and fuzz targets use.

pub(crate) mod block;
pub mod fleet;
pub(crate) mod store;

pub(crate) use store::WriteLock;

pub use crate::list_io::{Format, RuleRow, read_rows, write_rows};

pub(crate) use crate::list_io::{ChangeSummary, diff_rows, write_atomic};

//! The JSON list importer (rule files, API uploads) on any bytes: never a
//! panic, every problem located, and the rows it keeps survive export →
//! import in all three formats (`oracles::check_list`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/oracles.rs"]
mod oracles;

fuzz_target!(|data: &[u8]| {
    oracles::check_list(data, callguard::list_edit::Format::Json);
});

//! The FastAGI decoder on any byte stream Asterisk (or anyone reaching the
//! port) could send. Byte 0 picks the read size and the limits; the rest is
//! the stream. Checks, besides "no panic": the buffer stays within one line,
//! and cutting the stream into reads changes nothing (`oracles::check_agi`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/oracles.rs"]
mod oracles;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(mode & 0x3f) + 1;
    let cuts: Vec<usize> = (step..stream.len()).step_by(step).collect();
    // Small limits reach the bound checks with short inputs; the defaults are
    // what the server runs with.
    let (max_line, max_env_lines) = if mode & 0x80 != 0 {
        (48, 6)
    } else {
        (
            callguard::pbx::agi::codec::DEFAULT_MAX_LINE,
            callguard::pbx::agi::codec::DEFAULT_MAX_ENV_LINES,
        )
    };
    oracles::check_agi(stream, &cuts, max_line, max_env_lines);
});

//! The outbound Event Socket decoder on any byte stream: header blocks,
//! Content-Length bodies, URL-decoded values, `text/event-plain` bodies with
//! their own nested header block and inner body, `text/event-json`. Byte 0
//! picks the read size and the limits. Checks, besides "no panic": the buffer
//! stays within the header and body bounds, and cutting the stream into reads
//! changes nothing (`oracles::check_esl`).
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
    let (max_header, max_body) = if mode & 0x80 != 0 {
        (96, 64)
    } else {
        (
            callguard::pbx::esl::codec::DEFAULT_MAX_HEADER_BYTES,
            callguard::pbx::esl::codec::DEFAULT_MAX_BODY_BYTES,
        )
    };
    oracles::check_esl(stream, &cuts, max_header, max_body);
    // The value decoder on its own, on the raw bytes.
    let _ = callguard::pbx::esl::codec::url_decode(stream);
});

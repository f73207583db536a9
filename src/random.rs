//! Random bytes from the OS (`getrandom`): challenge digits a robot cannot predict and v4
//! UUIDs (FreeSWITCH `Event-UUID`s, `callguard call`'s Unique-IDs). A leaf: imports nothing
//! of callguard.
//!
//! Never panics: should the OS refuse (it does not on Linux after boot), the bytes come from
//! the clock, the process id and a counter through SplitMix64 — unpredictable enough for a
//! unique id, and a challenge digit still varies per call.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if getrandom::fill(&mut b).is_err() {
        fallback(&mut b);
    }
    b
}

fn fallback(out: &mut [u8]) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut state = nanos
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for chunk in out.chunks_mut(8) {
        // SplitMix64.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// A random (version 4, RFC 9562) UUID, lower-case hyphenated:
/// `1854cb19-d3ab-4103-a8eb-cbc2092e5f70`.
pub(crate) fn uuid_v4() -> String {
    format_v4(bytes::<16>())
}

fn format_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // variant RFC 9562
    // One allocation: every ESL execute takes a UUID (issue 26).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(x >> 4)]));
        out.push(char::from(HEX[usize::from(x & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_has_the_layout_version_and_variant() {
        let u = format_v4([0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let u = format_v4([0; 16]);
        assert_eq!(u, "00000000-0000-4000-8000-000000000000");
        let a = uuid_v4();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_ne!(uuid_v4(), a);
    }

    #[test]
    fn the_fallback_varies() {
        let (mut x, mut y) = ([0u8; 16], [0u8; 16]);
        fallback(&mut x);
        fallback(&mut y);
        assert_ne!(x, y);
    }
}

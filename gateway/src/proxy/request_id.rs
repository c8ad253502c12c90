//! X-Request-Id: kept when the client sent a sane one, generated otherwise.

use std::cell::Cell;

const MAX_LEN: usize = 128;

/// The client's id if it is short and plain (letters, digits, `-._:`), else a new one.
pub fn from_client_or_new(sent: Option<&[u8]>) -> String {
    match sent {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_LEN
                && id.iter().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':')
                }) =>
        {
            // Checked ASCII above.
            String::from_utf8_lossy(id).into_owned()
        }
        _ => generate(),
    }
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS per process; mix in the thread and the time.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish() | 1
}

/// 32 hex digits from a per-thread xorshift generator: unique enough to follow a request
/// through logs, cheap enough for every request. Not a secret.
pub fn generate() -> String {
    let (a, b) = STATE.with(|s| {
        let next = || {
            let mut x = s.get();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.set(x);
            x
        };
        (next(), next())
    });
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_others() {
        assert_eq!(from_client_or_new(Some(b"abc-123")), "abc-123");
        assert_eq!(from_client_or_new(Some(b"bad id")).len(), 32);
        assert_eq!(from_client_or_new(Some(&[b'a'; 200])).len(), 32);
        assert_ne!(generate(), generate());
    }
}

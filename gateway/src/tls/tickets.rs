//! Session tickets with rotating keys.
//!
//! Left to itself OpenSSL encrypts tickets under one key it makes per `SSL_CTX` and never
//! changes, so a key that leaks decrypts every ticket — and every resumed session's traffic —
//! for the whole life of the process. Here the TLS listeners encrypt tickets under a
//! *current* key that is replaced every `[tls] ticket_key_rotation_seconds`; the previous
//! `ticket_keys_kept` keys are still accepted to decrypt, and a ticket decrypted by one of
//! them is answered with a fresh ticket under the current key. A ticket is therefore accepted
//! for at least `kept × rotation` and at most `(kept + 1) × rotation` after it was issued
//! (the session lifetime the server announces is the latter), then the client does one full
//! handshake.
//!
//! Keys are random and live only in this process (shared by all its TLS listeners): a
//! restart or a binary upgrade starts with new keys, and clients of the old process do one
//! full handshake. Sharing keys across a fleet would need a key distribution this gateway
//! does not have.
//!
//! Neither Pingora nor the `openssl` crate wraps OpenSSL's ticket key callback, so this
//! module has the only `unsafe` code of the TLS listeners: the callback
//! (`SSL_CTX_set_tlsext_ticket_key_evp_cb`, OpenSSL 3.0+), which finds this module's key ring
//! in the `SSL_CTX`'s ex-data, fills in the key name and IV, and initialises the cipher (AES-
//! 256-CBC) and MAC (HMAC-SHA256) contexts OpenSSL hands it — exactly what OpenSSL does with
//! its own key. Everything else (when to rotate, which key a name is) is safe code and
//! unit-tested; the callback itself is tested with real handshakes below.

use openssl::error::ErrorStack;
use openssl::ssl::SslContextBuilder;
use openssl_sys::{EVP_CIPHER_CTX, EVP_MAC_CTX, OSSL_PARAM, SSL, SSL_CTX};
use parking_lot::Mutex;
use std::ffi::{c_char, c_int, c_long, c_uchar, c_void};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The length of a ticket's key name, its IV (AES block), and the two secrets.
const NAME_LEN: usize = 16;
const IV_LEN: usize = 16;
const SECRET_LEN: usize = 32;

/// The longest session lifetime a server may announce (RFC 8446 §4.6.1).
const MAX_LIFETIME: Duration = Duration::from_secs(604_800);

#[derive(Clone)]
struct Key {
    /// Sent in the clear at the start of each ticket: how a ticket names its key.
    name: [u8; NAME_LEN],
    aes: [u8; SECRET_LEN],
    hmac: [u8; SECRET_LEN],
}

impl Key {
    fn random() -> Result<Key, ErrorStack> {
        let mut key = Key {
            name: [0; NAME_LEN],
            aes: [0; SECRET_LEN],
            hmac: [0; SECRET_LEN],
        };
        openssl::rand::rand_bytes(&mut key.name)?;
        openssl::rand::rand_bytes(&mut key.aes)?;
        openssl::rand::rand_bytes(&mut key.hmac)?;
        Ok(key)
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // Keys do not outlive their use in memory handed back to the allocator.
        for b in self.aes.iter_mut().chain(self.hmac.iter_mut()) {
            // SAFETY: a valid, aligned &mut u8; volatile so the wipe is not optimised out.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// What the ring said about a ticket's key name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Current,
    Previous,
}

struct Ring {
    /// Newest first: `keys[0]` encrypts, all of them decrypt.
    keys: Vec<Key>,
    /// When `keys[0]` became the current key.
    since: Instant,
}

/// The ticket keys of a process: a current key and the previous ones still accepted.
pub struct TicketKeys {
    ring: Mutex<Ring>,
    rotation: Duration,
    kept: usize,
}

impl TicketKeys {
    pub fn new(rotation: Duration, kept: usize) -> Result<TicketKeys, ErrorStack> {
        Self::starting_at(rotation, kept, Instant::now())
    }

    fn starting_at(
        rotation: Duration,
        kept: usize,
        now: Instant,
    ) -> Result<TicketKeys, ErrorStack> {
        Ok(TicketKeys {
            ring: Mutex::new(Ring {
                keys: vec![Key::random()?],
                since: now,
            }),
            rotation: rotation.max(Duration::from_millis(1)),
            kept,
        })
    }

    /// The session lifetime announced to clients: the longest a ticket can be accepted.
    pub fn lifetime(&self) -> Duration {
        self.rotation
            .saturating_mul(self.kept as u32 + 1)
            .min(MAX_LIFETIME)
    }

    /// Makes the keys that are due at `now`: one per elapsed interval (at most a whole new
    /// ring), dropping those beyond the kept ones.
    fn rotate(&self, ring: &mut Ring, now: Instant) {
        let elapsed = now.saturating_duration_since(ring.since);
        let due = elapsed.as_nanos() / self.rotation.as_nanos();
        if due == 0 {
            return;
        }
        let fresh = due.min(self.kept as u128 + 1) as usize;
        let mut made = Vec::with_capacity(fresh);
        for _ in 0..fresh {
            match Key::random() {
                Ok(key) => made.push(key),
                Err(e) => {
                    // Keep what there is and try again at the next handshake.
                    log::error!("cannot make a TLS ticket key: {e}");
                    return;
                }
            }
        }
        made.reverse();
        made.append(&mut ring.keys);
        made.truncate(self.kept + 1);
        ring.keys = made;
        // Whole intervals only, so rotations stay on the same schedule.
        let step = u32::try_from(due).unwrap_or(u32::MAX);
        ring.since = ring
            .since
            .checked_add(self.rotation.saturating_mul(step))
            .unwrap_or(now);
    }

    /// The key new tickets are encrypted under at `now`.
    fn encryption_key(&self, now: Instant) -> Key {
        let mut ring = self.ring.lock();
        self.rotate(&mut ring, now);
        ring.keys[0].clone()
    }

    /// The key a ticket names, if it is still kept at `now`.
    fn decryption_key(&self, name: &[u8], now: Instant) -> Option<(Key, Found)> {
        let mut ring = self.ring.lock();
        self.rotate(&mut ring, now);
        let index = ring.keys.iter().position(|k| k.name[..] == *name)?;
        let found = if index == 0 {
            Found::Current
        } else {
            Found::Previous
        };
        Some((ring.keys[index].clone(), found))
    }

    /// As if `by` had passed (tests).
    #[cfg(test)]
    fn advance(&self, by: Duration) {
        let mut ring = self.ring.lock();
        ring.since = ring.since.checked_sub(by).expect("clock far enough");
    }
}

/// The ticket keys every TLS listener of this process shares (the `[tls]` settings of the
/// first listener made; they are read only at start).
pub fn process_keys(rotation: Duration, kept: usize) -> Result<&'static TicketKeys, String> {
    static KEYS: OnceLock<&'static TicketKeys> = OnceLock::new();
    if let Some(keys) = KEYS.get() {
        return Ok(keys);
    }
    let keys = TicketKeys::new(rotation, kept).map_err(|e| format!("TLS ticket keys: {e}"))?;
    Ok(KEYS.get_or_init(|| Box::leak(Box::new(keys))))
}

extern "C" {
    // OpenSSL 3.0+, libssl (linked through openssl-sys); openssl-sys does not declare these.
    fn SSL_CTX_set_tlsext_ticket_key_evp_cb(
        ctx: *mut SSL_CTX,
        callback: Option<
            unsafe extern "C" fn(
                *mut SSL,
                *mut c_uchar,
                *mut c_uchar,
                *mut EVP_CIPHER_CTX,
                *mut EVP_MAC_CTX,
                c_int,
            ) -> c_int,
        >,
    ) -> c_int;
    fn SSL_CTX_set_timeout(ctx: *mut SSL_CTX, seconds: c_long) -> c_long;
    fn OSSL_PARAM_construct_utf8_string(
        key: *const c_char,
        buf: *mut c_char,
        bsize: usize,
    ) -> OSSL_PARAM;
}

/// The `SSL_CTX` ex-data slot that holds a `&'static TicketKeys` (no free function: the
/// keys are never freed).
fn ex_index() -> Result<c_int, String> {
    static INDEX: OnceLock<c_int> = OnceLock::new();
    if let Some(i) = INDEX.get() {
        return Ok(*i);
    }
    openssl_sys::init();
    // SAFETY: registers a new ex-data index with no callbacks; no pointer is passed.
    let index =
        unsafe { openssl_sys::SSL_CTX_get_ex_new_index(0, std::ptr::null_mut(), None, None, None) };
    if index < 0 {
        return Err("TLS ticket keys: no SSL_CTX ex-data index".into());
    }
    Ok(*INDEX.get_or_init(|| index))
}

/// Makes the listener encrypt and decrypt its tickets with `keys`, and announce their
/// lifetime.
pub fn install(builder: &mut SslContextBuilder, keys: &'static TicketKeys) -> Result<(), String> {
    let index = ex_index()?;
    let ctx = builder.as_ptr();
    let lifetime = c_long::try_from(keys.lifetime().as_secs()).unwrap_or(c_long::MAX);
    // SAFETY: `ctx` is the live SSL_CTX of `builder`; the data pointer is 'static and only
    // ever read back as `&TicketKeys` by `ticket_key_callback`; the callback has the exact
    // signature OpenSSL declares.
    unsafe {
        if openssl_sys::SSL_CTX_set_ex_data(ctx, index, keys as *const TicketKeys as *mut c_void)
            != 1
        {
            return Err("TLS ticket keys: cannot attach them to the listener".into());
        }
        if SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, Some(ticket_key_callback)) != 1 {
            return Err("TLS ticket keys: cannot set the ticket key callback".into());
        }
        SSL_CTX_set_timeout(ctx, lifetime);
    }
    Ok(())
}

fn count(result: &str) {
    crate::metrics::get()
        .tls_tickets
        .with_label_values(&[result])
        .inc();
}

/// OpenSSL's ticket key callback. `enc == 1`: a ticket is to be issued — write the current
/// key's name and a random IV, set up encryption; return 1 (0: issue no ticket). Otherwise
/// a ticket arrived — look up its key by name; 0: unknown (a full handshake), 1: decrypted
/// with the current key, 2: with a previous key (and a new ticket is issued). Never -1: a
/// problem here costs the client a full handshake, never a failed one.
///
/// # Safety
/// Called by OpenSSL only, with `key_name` pointing to 16 bytes, `iv` to an IV buffer
/// (`EVP_MAX_IV_LENGTH`, 16), and live cipher and MAC contexts.
unsafe extern "C" fn ticket_key_callback(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cipher: *mut EVP_CIPHER_CTX,
    mac: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    // A panic must not unwind into C.
    std::panic::catch_unwind(|| {
        // SAFETY: the contract of this function, passed on.
        unsafe { ticket_key(ssl, key_name, iv, cipher, mac, enc) }
    })
    .unwrap_or(0)
}

unsafe fn ticket_key(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cipher: *mut EVP_CIPHER_CTX,
    mac: *mut EVP_MAC_CTX,
    enc: c_int,
) -> c_int {
    let Ok(index) = ex_index() else { return 0 };
    // SAFETY: `ssl` is the connection being handshaken; its SSL_CTX's slot holds either
    // nothing or the `&'static TicketKeys` that `install` put there.
    let keys = unsafe {
        let ctx = openssl_sys::SSL_get_SSL_CTX(ssl);
        let data = openssl_sys::SSL_CTX_get_ex_data(ctx, index) as *const TicketKeys;
        match data.as_ref() {
            Some(keys) => keys,
            None => return 0,
        }
    };
    let now = Instant::now();
    if enc == 1 {
        let key = keys.encryption_key(now);
        // SAFETY: OpenSSL's buffers of NAME_LEN and IV_LEN bytes.
        let (name, iv) = unsafe {
            (
                std::slice::from_raw_parts_mut(key_name, NAME_LEN),
                std::slice::from_raw_parts_mut(iv, IV_LEN),
            )
        };
        name.copy_from_slice(&key.name);
        if openssl::rand::rand_bytes(iv).is_err() {
            return 0;
        }
        // SAFETY: live contexts from OpenSSL; the key and IV are 32 and 16 bytes, as
        // AES-256-CBC takes them.
        let ready = unsafe {
            openssl_sys::EVP_EncryptInit_ex(
                cipher,
                openssl_sys::EVP_aes_256_cbc(),
                std::ptr::null_mut(),
                key.aes.as_ptr(),
                iv.as_ptr(),
            ) == 1
                && set_hmac_key(mac, &key.hmac)
        };
        if !ready {
            return 0;
        }
        count("issued");
        return 1;
    }
    // SAFETY: OpenSSL's NAME_LEN-byte buffer holding the ticket's key name.
    let name = unsafe { std::slice::from_raw_parts(key_name, NAME_LEN) };
    let Some((key, found)) = keys.decryption_key(name, now) else {
        count("unknown_key");
        return 0;
    };
    // SAFETY: as above; `iv` holds the ticket's IV (IV_LEN bytes).
    let ready = unsafe {
        set_hmac_key(mac, &key.hmac)
            && openssl_sys::EVP_DecryptInit_ex(
                cipher,
                openssl_sys::EVP_aes_256_cbc(),
                std::ptr::null_mut(),
                key.aes.as_ptr(),
                iv,
            ) == 1
    };
    if !ready {
        return 0;
    }
    match found {
        Found::Current => {
            count("decrypted");
            // TLS 1.3 clients use a ticket once (RFC 8446 §C.4) and OpenSSL sends a new one
            // after a TLS 1.3 resumption only when told to renew: without it every other
            // connection of such a client was a full handshake (7 739 of 15 498 resumed in the
            // benchmark). A TLS 1.2 client keeps its ticket, so it is renewed only when old.
            // SAFETY: `ssl` is the live connection OpenSSL handed the callback.
            if unsafe { openssl_sys::SSL_version(ssl) } == openssl_sys::TLS1_3_VERSION {
                2
            } else {
                1
            }
        }
        Found::Previous => {
            count("decrypted_old_key");
            2
        }
    }
}

/// Sets the MAC context to HMAC-SHA256 under `secret`.
///
/// # Safety
/// `mac` must be a live `EVP_MAC_CTX` for HMAC (what OpenSSL hands the ticket callback).
unsafe fn set_hmac_key(mac: *mut EVP_MAC_CTX, secret: &[u8; SECRET_LEN]) -> bool {
    let mut digest = *b"SHA256\0";
    // SAFETY: the keys are NUL-terminated constants, the buffers outlive the call, and
    // OpenSSL copies what it keeps (`EVP_MAC_CTX_set_params` does not retain the params).
    unsafe {
        let params = [
            openssl_sys::OSSL_PARAM_construct_octet_string(
                c"key".as_ptr(),
                secret.as_ptr() as *mut c_void,
                SECRET_LEN,
            ),
            OSSL_PARAM_construct_utf8_string(
                c"digest".as_ptr(),
                digest.as_mut_ptr().cast::<c_char>(),
                0,
            ),
            openssl_sys::OSSL_PARAM_construct_end(),
        ];
        openssl_sys::EVP_MAC_CTX_set_params(mac, params.as_ptr()) == 1
    }
}

#[cfg(test)]
mod tests;

//! The C API of libmodsecurity 3 (Debian's libmodsecurity3 3.0.9), declared by hand from
//! `/usr/include/modsecurity/{modsecurity,rules_set,transaction,intervention}.h`: only what
//! the gateway calls. The three handles are opaque. Imports are `C-unwind`: libmodsecurity is
//! C++ and an exception that escapes it (`bad_alloc`, say) must unwind into defined behaviour
//! (an abort at the first frame that cannot unwind) rather than be undefined.
//!
//! Ownership rules the safe layer (`engine.rs`) keeps:
//! * `msc_rules_add*` return the number of rules added or -1; on -1 `*error` is a `strdup`ed
//!   message the caller frees with `free`. On success `*error` is left alone.
//! * `ModSecurityIntervention` is initialised by the caller; `url` and `log` are `strdup`ed
//!   by the library and freed by the caller.
//! * A transaction points at its `ModSecurity` and `RulesSet` without counting: both must
//!   outlive it.

#![allow(dead_code)] // the plain constructor is declared, not used

use std::ffi::{c_char, c_int, c_uchar, c_void};
use std::marker::{PhantomData, PhantomPinned};

/// `ModSecurity` (`struct ModSecurity_t`): one per process.
#[repr(C)]
pub struct ModSecurity {
    _p: [u8; 0],
    _m: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `RulesSet` (`struct Rules_t`): one loaded configuration.
#[repr(C)]
pub struct RulesSet {
    _p: [u8; 0],
    _m: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `Transaction` (`struct Transaction_t`): one request.
#[repr(C)]
pub struct Transaction {
    _p: [u8; 0],
    _m: PhantomData<(*mut u8, PhantomPinned)>,
}

/// `ModSecurityIntervention` (intervention.h), field for field.
#[repr(C)]
pub struct ModSecurityIntervention {
    pub status: c_int,
    pub pause: c_int,
    /// `strdup`ed by the library (redirects only): free with [`free`].
    pub url: *mut c_char,
    /// `strdup`ed by the library: free with [`free`].
    pub log: *mut c_char,
    pub disruptive: c_int,
}

impl ModSecurityIntervention {
    /// The initial value the header asks callers to pass.
    pub fn initial() -> Self {
        ModSecurityIntervention {
            status: 200,
            pause: 0,
            url: std::ptr::null_mut(),
            log: std::ptr::null_mut(),
            disruptive: 0,
        }
    }
}

/// `typedef void (*ModSecLogCb) (void *, const void *)`: `data` is the transaction's
/// `logCbData`, `msg` a NUL-terminated text line valid only during the call.
pub type ModSecLogCb = Option<unsafe extern "C" fn(data: *mut c_void, msg: *const c_void)>;

#[link(name = "modsecurity")]
extern "C-unwind" {
    pub fn msc_init() -> *mut ModSecurity;
    pub fn msc_set_connector_info(msc: *mut ModSecurity, connector: *const c_char);
    pub fn msc_set_log_cb(msc: *mut ModSecurity, cb: ModSecLogCb);
    pub fn msc_cleanup(msc: *mut ModSecurity);

    pub fn msc_create_rules_set() -> *mut RulesSet;
    pub fn msc_rules_add(
        rules: *mut RulesSet,
        plain_rules: *const c_char,
        error: *mut *const c_char,
    ) -> c_int;
    pub fn msc_rules_add_file(
        rules: *mut RulesSet,
        file: *const c_char,
        error: *mut *const c_char,
    ) -> c_int;
    pub fn msc_rules_cleanup(rules: *mut RulesSet) -> c_int;

    pub fn msc_new_transaction(
        ms: *mut ModSecurity,
        rules: *mut RulesSet,
        log_cb_data: *mut c_void,
    ) -> *mut Transaction;
    /// `id` is copied; it becomes `UNIQUE_ID`.
    pub fn msc_new_transaction_with_id(
        ms: *mut ModSecurity,
        rules: *mut RulesSet,
        id: *mut c_char,
        log_cb_data: *mut c_void,
    ) -> *mut Transaction;
    pub fn msc_process_connection(
        transaction: *mut Transaction,
        client: *const c_char,
        c_port: c_int,
        server: *const c_char,
        s_port: c_int,
    ) -> c_int;
    /// `protocol` is the method (`"GET"`), `http_version` e.g. `"1.1"`.
    pub fn msc_process_uri(
        transaction: *mut Transaction,
        uri: *const c_char,
        protocol: *const c_char,
        http_version: *const c_char,
    ) -> c_int;
    pub fn msc_add_n_request_header(
        transaction: *mut Transaction,
        key: *const c_uchar,
        len_key: usize,
        value: *const c_uchar,
        len_value: usize,
    ) -> c_int;
    pub fn msc_process_request_headers(transaction: *mut Transaction) -> c_int;
    pub fn msc_append_request_body(
        transaction: *mut Transaction,
        body: *const c_uchar,
        size: usize,
    ) -> c_int;
    pub fn msc_process_request_body(transaction: *mut Transaction) -> c_int;
    pub fn msc_add_n_response_header(
        transaction: *mut Transaction,
        key: *const c_uchar,
        len_key: usize,
        value: *const c_uchar,
        len_value: usize,
    ) -> c_int;
    /// `protocol` e.g. `"HTTP 1.1"`.
    pub fn msc_process_response_headers(
        transaction: *mut Transaction,
        code: c_int,
        protocol: *const c_char,
    ) -> c_int;
    pub fn msc_append_response_body(
        transaction: *mut Transaction,
        body: *const c_uchar,
        size: usize,
    ) -> c_int;
    pub fn msc_process_response_body(transaction: *mut Transaction) -> c_int;
    pub fn msc_process_logging(transaction: *mut Transaction) -> c_int;
    /// Returns `disruptive`; writes `it` only when the transaction holds an intervention.
    pub fn msc_intervention(
        transaction: *mut Transaction,
        it: *mut ModSecurityIntervention,
    ) -> c_int;
    pub fn msc_transaction_cleanup(transaction: *mut Transaction);
}

extern "C" {
    /// libc's `free`, for the strings the library `strdup`s (std links libc already).
    pub fn free(ptr: *mut c_void);
}

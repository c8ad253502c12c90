//! A thin safe layer over libmodsecurity's C API ([`super::ffi`]):
//!
//! * [`Engine`]: the one `ModSecurity` of the process, created on first use with our log
//!   callback installed. Never freed (transactions may exist until the process ends).
//! * [`Rules`]: one loaded rules set, shared read-only by any number of transactions on any
//!   threads (upstream's position, and what the prototype measured). Loading is *not*
//!   thread-safe in 3.0.9 (the flex/bison parser has global state, even across rules sets),
//!   so every load and every free holds one process-wide mutex. A failed load returns the
//!   engine's own message and drops the half-built set (errors accumulate inside a set).
//! * [`Transaction`]: one request. [`Transaction::inspect_request`] runs the request side —
//!   connection, URI, headers (phase 1), body (phase 2, always, because CRS 3.3 decides
//!   there; our score rule 99003 reports the inbound score at its end) — and, unless the
//!   transaction stays open for the response, logging (phase 5, where 99001 reports).
//!   An open transaction goes on with [`Transaction::inspect_response_headers`] (phase 3)
//!   and [`Transaction::inspect_response_body`] (phase 4, where CRS 3.3 decides outbound,
//!   then logging; 99004 reports the outbound score). Verdicts come from
//!   `msc_intervention`; matched rules only arrive as text lines through the log callback,
//!   which runs synchronously on the calling thread and appends to the transaction's own
//!   sink through the `data` pointer.
//!
//! Log lines carry request bytes verbatim in some fields, so ids and severities are taken
//! only from anchored sequences (see [`parse_line`]); a line with more than one candidate is
//! reported as ambiguous (id 0) rather than trusted.
//!
//! Everything here is synchronous and CPU-bound: the request side (0.3–1 ms at PL1) runs on
//! a blocking pool, never on the proxy's event loop; the response side is cheap enough for
//! it (see `waf/crs/mod.rs`).

use super::ffi;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// The id of our phase-5 rule that reports the inbound anomaly score (see `rules.rs`).
pub const SCORE_RULE_ID: u32 = 99001;
/// The same report at the end of phase 2, for a transaction that stays open for the
/// response (its phase 5 comes later).
pub const REQUEST_SCORE_RULE_ID: u32 = 99003;
/// The id of our phase-5 rule that reports the outbound anomaly score.
pub const OUTBOUND_SCORE_RULE_ID: u32 = 99004;

/// How the score rule's line starts. Operator, parameter and variable are ours and the value
/// is a number, so no other rule — and no request data — can produce this prefix.
const SCORE_PREFIX: &str = "ModSecurity: Warning. Matched \"Operator `Gt' with parameter `0' \
                            against variable `TX:ANOMALY_SCORE' (Value: `";
/// Likewise for the outbound score rule.
const OUTBOUND_SCORE_PREFIX: &str = "ModSecurity: Warning. Matched \"Operator `Gt' with parameter \
                                     `0' against variable `TX:OUTBOUND_ANOMALY_SCORE' (Value: `";

/// What the text of `msc_rules_add` errors says instead of a file name.
const NO_FILE: &str = "<<reference missing or not informed>>";

/// Log lines kept per transaction (a request cannot make the sink grow without bound).
const MAX_LINES: usize = 512;

/// Rules sets load and free one at a time, process-wide.
static LOAD: Mutex<()> = Mutex::new(());

/// One piece of a configuration, loaded in order into one rules set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// SecLang text (`msc_rules_add`); `name` stands in for a file name in errors.
    Text { name: String, text: String },
    /// A file (`msc_rules_add_file`), so the engine names it in errors.
    File { name: String, path: PathBuf },
}

impl Part {
    pub fn text(name: &str, text: impl Into<String>) -> Part {
        Part::Text {
            name: name.into(),
            text: text.into(),
        }
    }

    pub fn file(name: &str, path: impl Into<PathBuf>) -> Part {
        Part::File {
            name: name.into(),
            path: path.into(),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Part::Text { name, .. } | Part::File { name, .. } => name,
        }
    }
}

/// The process's `ModSecurity`.
pub struct Engine {
    ptr: NonNull<ffi::ModSecurity>,
}

// SAFETY: after `msc_init` and the callback set-up the handle is only read (its shared
// collections lock internally); libmodsecurity allows transactions on any threads.
unsafe impl Send for Engine {}
unsafe impl Sync for Engine {}

impl Engine {
    /// The engine, created (once, on the first caller's thread) with our log callback.
    pub fn get() -> &'static Engine {
        static ENGINE: OnceLock<Engine> = OnceLock::new();
        ENGINE.get_or_init(|| {
            // SAFETY: plain C calls; the callback is set before any transaction exists.
            unsafe {
                let ptr = NonNull::new(ffi::msc_init()).expect("msc_init returned a ModSecurity");
                ffi::msc_set_connector_info(ptr.as_ptr(), c"tidegate".as_ptr());
                ffi::msc_set_log_cb(ptr.as_ptr(), Some(log_cb));
                Engine { ptr }
            }
        })
    }
}

/// A loaded rules set. Freed (under the load lock) when the last holder drops it, which may
/// take milliseconds: drop the last `Arc` off the event loop.
pub struct Rules {
    ptr: NonNull<ffi::RulesSet>,
    count: usize,
}

// SAFETY: a loaded rules set is only read by transactions (upstream: "can be shared by many
// requests in parallel"); loading and freeing are serialised by `LOAD`.
unsafe impl Send for Rules {}
unsafe impl Sync for Rules {}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules").field("count", &self.count).finish()
    }
}

impl Rules {
    /// Loads `parts` in order into a new rules set. On failure: `"<part>: <engine message>"`.
    pub fn load(parts: &[Part]) -> Result<Rules, String> {
        let _engine = Engine::get(); // msc_init before the first rules set
        let _guard = LOAD.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: under the load lock; the set is freed on every error path below.
        let ptr = NonNull::new(unsafe { ffi::msc_create_rules_set() })
            .ok_or_else(|| "libmodsecurity could not create a rules set".to_string())?;
        let mut count = 0usize;
        for part in parts {
            match add(ptr, part) {
                Ok(n) => count += n,
                Err(e) => {
                    // SAFETY: created above, never shared.
                    unsafe { ffi::msc_rules_cleanup(ptr.as_ptr()) };
                    return Err(e);
                }
            }
        }
        Ok(Rules { ptr, count })
    }

    /// Like [`Rules::load`], but shares a set that is still alive when the same parts — the
    /// same text, and files of the same size and modification time — are loaded again (a
    /// reload that did not touch the WAF, a config check). The most recently used set is
    /// kept alive too, so checks of a config the running one does not share still load once.
    pub fn load_shared(parts: &[Part]) -> Result<Arc<Rules>, String> {
        static CACHE: Mutex<Option<HashMap<String, Weak<Rules>>>> = Mutex::new(None);
        static RECENT: Mutex<Option<Arc<Rules>>> = Mutex::new(None);
        let key = fingerprint(parts);
        let found = {
            let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
            let map = cache.get_or_insert_with(HashMap::new);
            map.retain(|_, weak| weak.strong_count() > 0);
            map.get(&key).and_then(Weak::upgrade)
        };
        let rules = match found {
            Some(rules) => rules,
            None => {
                // Loaded outside the cache lock: two callers may load the same parts; both
                // work.
                let rules = Arc::new(Rules::load(parts)?);
                CACHE
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .get_or_insert_with(HashMap::new)
                    .insert(key, Arc::downgrade(&rules));
                rules
            }
        };
        let previous = RECENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(rules.clone());
        drop(previous); // outside the lock: it may be the last holder, and freeing takes ms
        Ok(rules)
    }

    /// The number of rules the engine reported adding.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        let _guard = LOAD.lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: no transaction is left (each holds an `Arc<Rules>`).
        unsafe { ffi::msc_rules_cleanup(self.ptr.as_ptr()) };
    }
}

/// One `msc_rules_add*` call; the count of rules added, or the engine's message.
fn add(ptr: NonNull<ffi::RulesSet>, part: &Part) -> Result<usize, String> {
    let mut error: *const c_char = std::ptr::null();
    let rc: c_int = match part {
        Part::Text { name, text } => {
            let text = CString::new(text.as_bytes())
                .map_err(|_| format!("{name}: the rules text contains a NUL byte"))?;
            // SAFETY: valid C string and out-pointer; the caller holds the load lock.
            unsafe { ffi::msc_rules_add(ptr.as_ptr(), text.as_ptr(), &mut error) }
        }
        Part::File { name, path } => {
            let file = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| format!("{name}: the path {} contains a NUL byte", path.display()))?;
            // SAFETY: as above.
            unsafe { ffi::msc_rules_add_file(ptr.as_ptr(), file.as_ptr(), &mut error) }
        }
    };
    // SAFETY: on failure `error` is a strdup'ed C string that is ours to free.
    let message = unsafe { take_c_string(error.cast_mut()) };
    match usize::try_from(rc) {
        Ok(n) => Ok(n),
        Err(_) => {
            let message = message.unwrap_or_else(|| "the rules were refused".to_string());
            let message = match part {
                Part::Text { name, .. } => message.replace(NO_FILE, &format!("<{name}>")),
                Part::File { .. } => message,
            };
            Err(format!("{}: {}", part.name(), message.trim()))
        }
    }
}

/// Copies a C string the library `strdup`ed and frees it.
///
/// # Safety
/// `ptr` is null or a NUL-terminated string from `malloc`, not used afterwards.
unsafe fn take_c_string(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    let text = CStr::from_ptr(ptr).to_string_lossy().into_owned();
    ffi::free(ptr.cast());
    Some(text)
}

/// The cache key of some parts: their text, and for files their path, size and mtime.
fn fingerprint(parts: &[Part]) -> String {
    let mut key = String::new();
    for part in parts {
        match part {
            Part::Text { name, text } => {
                key.push_str(&format!("T {name} {}\n{text}\n", text.len()));
            }
            Part::File { name, path } => {
                let stamp = std::fs::metadata(path).ok().map(|m| {
                    let mtime = m
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_nanos());
                    (m.len(), mtime)
                });
                key.push_str(&format!("F {name} {} {stamp:?}\n", path.display()));
            }
        }
    }
    key
}

/// What the log callback collects for one transaction.
#[derive(Default)]
struct Sink {
    lines: Vec<String>,
    dropped: usize,
}

/// The process-wide log callback: `data` is the running transaction's [`Sink`].
unsafe extern "C" fn log_cb(data: *mut c_void, msg: *const c_void) {
    if data.is_null() || msg.is_null() {
        return;
    }
    // A panic must not unwind into C++.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `data` is the `Box<Sink>` of the transaction whose `msc_process_*` call is
        // running on this thread (the callback is synchronous); nothing else touches it
        // meanwhile. `msg` is a NUL-terminated line valid for the call.
        let sink = unsafe { &mut *data.cast::<Sink>() };
        if sink.lines.len() >= MAX_LINES {
            sink.dropped += 1;
            return;
        }
        let line = unsafe { CStr::from_ptr(msg.cast::<c_char>()) };
        sink.lines.push(line.to_string_lossy().into_owned());
    }));
}

/// What one request looks like to the engine. Header names and values are bytes; the rest
/// must not contain NUL (such a request is refused with 400).
#[derive(Debug, Clone)]
pub struct RequestView<'a> {
    /// Becomes `UNIQUE_ID` (the gateway's request id).
    pub id: &'a str,
    pub client_ip: &'a str,
    pub client_port: u16,
    pub server_ip: &'a str,
    pub server_port: u16,
    pub method: &'a str,
    /// Origin-form target: path and query, raw as received.
    pub uri: &'a [u8],
    /// `"1.0"`, `"1.1"`, `"2.0"`.
    pub http_version: &'a str,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// The body (at most the configured limit); `None` for none.
    pub body: Option<&'a [u8]>,
}

/// What one response looks like to the engine (its header; the body comes separately).
#[derive(Debug, Clone)]
pub struct ResponseView<'a> {
    pub status: u16,
    /// `"HTTP 1.1"`, `"HTTP 2.0"`: the engine's `RESPONSE_PROTOCOL`.
    pub protocol: &'a str,
    pub headers: Vec<(&'a [u8], &'a [u8])>,
}

/// One matched rule, as attributed by the anchored parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// 0: the line was ambiguous (request data imitated the id field).
    pub id: u32,
    /// For display only: it may contain request data.
    pub msg: String,
    /// 0–7 (CRITICAL 2, ERROR 3, WARNING 4, NOTICE 5); 0 also when unset or ambiguous.
    pub severity: u8,
}

/// The engine's decision about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The engine wants the request refused (never under `DetectionOnly`).
    pub disruptive: bool,
    /// The engine's status for a disruptive verdict (403 for `deny`), else 200.
    pub status: u16,
    /// Matched rules in order, each id once; the disruptive rule (949110, say) included.
    /// Our score rule is not listed.
    pub rules: Vec<Match>,
    /// The inbound anomaly score (0 when the score rule did not fire).
    pub score: u32,
    /// The outbound anomaly score (response verdicts; 0 when its rule did not fire).
    pub outbound_score: u32,
    /// The intervention's log line, for diagnostics.
    pub log: Option<String>,
}

impl Verdict {
    fn pass() -> Verdict {
        Verdict {
            disruptive: false,
            status: 200,
            rules: Vec::new(),
            score: 0,
            outbound_score: 0,
            log: None,
        }
    }

    /// Refused before the engine saw the request (a NUL byte, an allocation failure).
    fn refused(status: u16, why: &str) -> Verdict {
        Verdict {
            disruptive: true,
            status,
            log: Some(why.to_string()),
            ..Verdict::pass()
        }
    }

    /// The ids of the matched rules, in order.
    pub fn ids(&self) -> Vec<u32> {
        self.rules.iter().map(|m| m.id).collect()
    }

    /// Takes in what an earlier phase of the same transaction matched (its rules first).
    pub fn merge(&mut self, earlier: Verdict) {
        let later = std::mem::replace(&mut self.rules, earlier.rules);
        for m in later {
            self.push(m);
        }
        self.score = self.score.max(earlier.score);
        self.outbound_score = self.outbound_score.max(earlier.outbound_score);
    }

    fn push(&mut self, m: Match) {
        if m.id == 0 || !self.rules.iter().any(|r| r.id == m.id) {
            self.rules.push(m);
        }
    }
}

/// One request's transaction. `Send` (no thread-local state); `Sync` only because no
/// method takes `&self`.
pub struct Transaction {
    ptr: NonNull<ffi::Transaction>,
    /// `Box::into_raw` of the sink the callback writes through; freed in `Drop`.
    sink: *mut Sink,
    /// Keeps the rules set alive as long as the transaction points at it.
    _rules: Arc<Rules>,
}

// SAFETY: a transaction may move between threads between calls; `&mut self` on every call
// keeps two threads from using it at once.
unsafe impl Send for Transaction {}
// SAFETY: there is nothing to do through a `&Transaction` (every method takes `&mut self`),
// so sharing references cannot race.
unsafe impl Sync for Transaction {}

impl Transaction {
    /// A transaction on `rules`; `id` becomes its `UNIQUE_ID` (NUL bytes are replaced).
    pub fn new(rules: &Arc<Rules>, id: &str) -> Option<Transaction> {
        let engine = Engine::get();
        let id = CString::new(id.replace('\0', "_")).ok()?;
        let sink = Box::into_raw(Box::<Sink>::default());
        // SAFETY: engine and rules outlive the transaction (static / Arc held); the id is
        // copied by the library; `sink` stays valid until `Drop`.
        let ptr = unsafe {
            ffi::msc_new_transaction_with_id(
                engine.ptr.as_ptr(),
                rules.ptr.as_ptr(),
                id.as_ptr().cast_mut(),
                sink.cast(),
            )
        };
        match NonNull::new(ptr) {
            Some(ptr) => Some(Transaction {
                ptr,
                sink,
                _rules: rules.clone(),
            }),
            None => {
                // SAFETY: from Box::into_raw above, never shared.
                drop(unsafe { Box::from_raw(sink) });
                None
            }
        }
    }

    /// Runs the request side — connection, URI, headers, body — and returns the verdict.
    /// Then logging (phase 5) too, unless `stay_open` and the request passed: then the
    /// response phases follow. Call once per transaction.
    pub fn inspect_request(&mut self, req: &RequestView<'_>, stay_open: bool) -> Verdict {
        let mut verdict = Verdict::pass();
        let strings = (
            CString::new(req.client_ip),
            CString::new(req.server_ip),
            CString::new(req.uri),
            CString::new(req.method),
            CString::new(req.http_version),
        );
        let (Ok(client), Ok(server), Ok(uri), Ok(method), Ok(version)) = strings else {
            return Verdict::refused(400, "a NUL byte in the request line or address");
        };
        let t = self.ptr.as_ptr();
        // SAFETY: `t` is live; every pointer passed is valid for the call; the callback
        // writes to our sink only during these calls.
        unsafe {
            'phases: {
                ffi::msc_process_connection(
                    t,
                    client.as_ptr(),
                    c_int::from(req.client_port),
                    server.as_ptr(),
                    c_int::from(req.server_port),
                );
                if self.intervened(&mut verdict) {
                    break 'phases;
                }
                ffi::msc_process_uri(t, uri.as_ptr(), method.as_ptr(), version.as_ptr());
                if self.intervened(&mut verdict) {
                    break 'phases;
                }
                for (name, value) in &req.headers {
                    ffi::msc_add_n_request_header(
                        t,
                        name.as_ptr(),
                        name.len(),
                        value.as_ptr(),
                        value.len(),
                    );
                }
                ffi::msc_process_request_headers(t);
                if self.intervened(&mut verdict) {
                    break 'phases;
                }
                if let Some(body) = req.body.filter(|b| !b.is_empty()) {
                    ffi::msc_append_request_body(t, body.as_ptr(), body.len());
                    if self.intervened(&mut verdict) {
                        break 'phases;
                    }
                }
                // Always, even without a body: CRS 3.3 decides in phase 2.
                ffi::msc_process_request_body(t);
                self.intervened(&mut verdict);
            }
            // After a block always: the score rule of phase 2 did not run.
            if verdict.disruptive || !stay_open {
                ffi::msc_process_logging(t);
            }
        }
        self.collect(&mut verdict);
        verdict
    }

    /// Phase 3: the response status and headers. Only on a transaction whose request
    /// passed with `stay_open`; follow with [`Self::inspect_response_body`].
    pub fn inspect_response_headers(&mut self, resp: &ResponseView<'_>) -> Verdict {
        let mut verdict = Verdict::pass();
        let Ok(protocol) = CString::new(resp.protocol) else {
            return Verdict::refused(502, "a NUL byte in the response protocol");
        };
        let t = self.ptr.as_ptr();
        // SAFETY: as in `inspect_request`.
        unsafe {
            for (name, value) in &resp.headers {
                ffi::msc_add_n_response_header(
                    t,
                    name.as_ptr(),
                    name.len(),
                    value.as_ptr(),
                    value.len(),
                );
            }
            ffi::msc_process_response_headers(t, c_int::from(resp.status), protocol.as_ptr());
            if self.intervened(&mut verdict) {
                ffi::msc_process_logging(t);
            }
        }
        self.collect(&mut verdict);
        verdict
    }

    /// Phase 4 on `body` (a prefix of the response body; empty for none or one not
    /// inspected), then logging. The engine itself runs phase 4 only when response body
    /// access is on and the response's content type is one it inspects.
    pub fn inspect_response_body(&mut self, body: &[u8]) -> Verdict {
        let mut verdict = Verdict::pass();
        let t = self.ptr.as_ptr();
        // SAFETY: as in `inspect_request`.
        unsafe {
            'phases: {
                if !body.is_empty() {
                    ffi::msc_append_response_body(t, body.as_ptr(), body.len());
                    if self.intervened(&mut verdict) {
                        break 'phases;
                    }
                }
                ffi::msc_process_response_body(t);
                self.intervened(&mut verdict);
            }
            ffi::msc_process_logging(t);
        }
        self.collect(&mut verdict);
        verdict
    }

    /// Moves what the callback wrote since the last call into `verdict`.
    fn collect(&mut self, verdict: &mut Verdict) {
        // SAFETY: no library call is running, so the callback cannot write meanwhile.
        let sink = unsafe { &mut *self.sink };
        for line in sink.lines.drain(..) {
            match parse_line(&line) {
                Line::Score(score) => verdict.score = score,
                Line::OutboundScore(score) => verdict.outbound_score = score,
                Line::Rule(m) => verdict.push(m),
                Line::Other => {}
            }
        }
        let disruptive_rule = verdict.log.as_deref().map(parse_line);
        if let Some(Line::Rule(m)) = disruptive_rule {
            verdict.push(m);
        }
    }

    /// `msc_intervention`: records a disruptive intervention in `verdict`.
    unsafe fn intervened(&mut self, verdict: &mut Verdict) -> bool {
        let mut it = ffi::ModSecurityIntervention::initial();
        let disruptive = ffi::msc_intervention(self.ptr.as_ptr(), &mut it) != 0;
        let log = take_c_string(it.log);
        drop(take_c_string(it.url));
        if disruptive {
            verdict.disruptive = true;
            verdict.status = u16::try_from(it.status).unwrap_or(403);
            verdict.log = log;
        }
        disruptive
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        // SAFETY: the transaction is ours; the sink outlives it and is freed after it.
        unsafe {
            ffi::msc_transaction_cleanup(self.ptr.as_ptr());
            drop(Box::from_raw(self.sink));
        }
    }
}

/// One request on `rules`: a new transaction, run and freed — or, with `stay_open` and a
/// request that passed, returned for the response phases.
pub fn inspect(
    rules: &Arc<Rules>,
    req: &RequestView<'_>,
    stay_open: bool,
) -> (Verdict, Option<Transaction>) {
    match Transaction::new(rules, req.id) {
        Some(mut tx) => {
            let verdict = tx.inspect_request(req, stay_open);
            let open = (stay_open && !verdict.disruptive).then_some(tx);
            (verdict, open)
        }
        None => (
            Verdict::refused(500, "libmodsecurity could not create a transaction"),
            None,
        ),
    }
}

/// What a log line says.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A score rule's line: the inbound anomaly score.
    Score(u32),
    /// The outbound score rule's line.
    OutboundScore(u32),
    /// Any other rule's match.
    Rule(Match),
    /// No rule id at all (engine notices).
    Other,
}

/// Reads one callback line (or an intervention log).
///
/// * Id: the anchored sequence `[file "…"] [line "<digits>"] [id "<digits>"] [rev "`. One
///   found: that id. More than one: request data imitated it, the match is ambiguous (id 0).
/// * Severity: the anchored `"] [severity "<0-7>"] [ver "`, likewise.
/// * Score: only from a line that starts with a score rule's fixed prefix and whose one
///   anchored id is that rule's ([`SCORE_RULE_ID`] or [`REQUEST_SCORE_RULE_ID`] inbound,
///   [`OUTBOUND_SCORE_RULE_ID`] outbound).
pub fn parse_line(line: &str) -> Line {
    let (count, first) = anchored_id(line);
    if count == 0 {
        return Line::Other;
    }
    let unambiguous = count == 1;
    if unambiguous {
        let value = |prefix: &str| -> Option<u32> {
            let rest = line.strip_prefix(prefix)?;
            rest[..rest.bytes().take_while(u8::is_ascii_digit).count()]
                .parse()
                .ok()
        };
        match first.map(|(id, _)| id) {
            Some(SCORE_RULE_ID | REQUEST_SCORE_RULE_ID) => {
                if let Some(score) = value(SCORE_PREFIX) {
                    return Line::Score(score);
                }
            }
            Some(OUTBOUND_SCORE_RULE_ID) => {
                if let Some(score) = value(OUTBOUND_SCORE_PREFIX) {
                    return Line::OutboundScore(score);
                }
            }
            _ => {}
        }
    }
    let (id, after) = match first {
        Some((id, after)) if unambiguous => (id, after),
        Some((_, after)) => (0, after),
        None => (0, 0),
    };
    let severity = match anchored_severity(line) {
        (1, Some(s)) if unambiguous => s,
        _ => 0,
    };
    Line::Rule(Match {
        id,
        msg: message(line, after),
        severity,
    })
}

/// How many anchored id sequences `line` has, and the first one's id (0 if it does not fit
/// a u32) with the offset just after it.
fn anchored_id(line: &str) -> (usize, Option<(u32, usize)>) {
    const FILE: &str = "[file \"";
    const LINE: &str = "\"] [line \"";
    const ID: &str = "\"] [id \"";
    const REV: &str = "\"] [rev \"";
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut count = 0;
    let mut first = None;
    let mut from = 0;
    while let Some(at) = line[from..].find(FILE) {
        let p = from + at;
        from = p + 1;
        let after_file = p + FILE.len();
        let Some(q) = line[after_file..].find(LINE) else {
            break;
        };
        let l = after_file + q + LINE.len();
        let Some(le) = line[l..].find(ID).map(|x| l + x) else {
            continue;
        };
        if !digits(&line[l..le]) {
            continue;
        }
        let i = le + ID.len();
        let Some(ie) = line[i..].find(REV).map(|x| i + x) else {
            continue;
        };
        if !digits(&line[i..ie]) {
            continue;
        }
        count += 1;
        if first.is_none() {
            first = Some((line[i..ie].parse().unwrap_or(0), ie + REV.len()));
        }
    }
    (count, first)
}

/// How many anchored severity fields `line` has, and the first one's value.
fn anchored_severity(line: &str) -> (usize, Option<u8>) {
    const SEV: &str = "\"] [severity \"";
    const VER: &[u8] = b"\"] [ver \"";
    let bytes = line.as_bytes();
    let mut count = 0;
    let mut first = None;
    let mut from = 0;
    while let Some(at) = line[from..].find(SEV) {
        let d = from + at + SEV.len();
        from = from + at + 1;
        if let Some(&digit) = bytes.get(d) {
            if (b'0'..=b'7').contains(&digit) && bytes[d + 1..].starts_with(VER) {
                count += 1;
                first.get_or_insert(digit - b'0');
            }
        }
    }
    (count, first)
}

/// The `[msg "…"]` after offset `from`, up to `"] [data "` (display only).
fn message(line: &str, from: usize) -> String {
    const MSG: &str = "\"] [msg \"";
    const DATA: &str = "\"] [data \"";
    let rest = &line[from.min(line.len())..];
    // The anchored parse stops inside `[rev "…`: the message field follows it.
    let Some(start) = rest.find(MSG).map(|x| x + MSG.len()) else {
        return String::new();
    };
    let text = &rest[start..];
    let end = text.find(DATA).unwrap_or(text.len());
    text[..end].chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQLI_LINE: &str = "ModSecurity: Warning. detected SQLi using libinjection. [file \"/usr/share/modsecurity-crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\"] [line \"46\"] [id \"942100\"] [rev \"\"] [msg \"SQL Injection Attack Detected via libinjection\"] [data \"Matched Data: s&sos found within ARGS:id: 1' OR '1'='1\"] [severity \"2\"] [ver \"OWASP_CRS/3.3.4\"] [maturity \"0\"] [accuracy \"0\"] [tag \"application-multi\"] [tag \"OWASP_CRS\"] [hostname \"127.0.0.1\"] [uri \"/\"] [unique_id \"sample-1\"] [ref \"v9,12\"]";

    const SCORE_LINE: &str = "ModSecurity: Warning. Matched \"Operator `Gt' with parameter `0' against variable `TX:ANOMALY_SCORE' (Value: `20' ) [file \"<tidegate score rule>\"] [line \"1\"] [id \"99001\"] [rev \"\"] [msg \"tidegate score inbound=20 outbound=0\"] [data \"\"] [severity \"0\"] [ver \"\"] [maturity \"0\"] [accuracy \"0\"] [hostname \"127.0.0.1\"] [uri \"/\"] [unique_id \"x\"] [ref \"\"]";

    #[test]
    fn a_crs_line_gives_its_id_message_and_severity() {
        assert_eq!(
            parse_line(SQLI_LINE),
            Line::Rule(Match {
                id: 942100,
                msg: "SQL Injection Attack Detected via libinjection".into(),
                severity: 2,
            })
        );
    }

    #[test]
    fn the_score_comes_only_from_the_score_rule_line() {
        assert_eq!(parse_line(SCORE_LINE), Line::Score(20));
        // Another rule matching TX:ANOMALY_SCORE with the same operator is not the score.
        let other = SCORE_LINE.replace("[id \"99001\"]", "[id \"12345\"]");
        assert!(matches!(
            parse_line(&other),
            Line::Rule(Match { id: 12345, .. })
        ));
        // Nor is a line that merely contains the prefix somewhere.
        let embedded = format!("ModSecurity: Warning. x {SCORE_LINE}");
        assert!(!matches!(parse_line(&embedded), Line::Score(_)));
        // The phase-2 report is the inbound score too; the outbound rule's is outbound, and
        // only with its own variable.
        let phase2 = SCORE_LINE.replace("[id \"99001\"]", "[id \"99003\"]");
        assert_eq!(parse_line(&phase2), Line::Score(20));
        let outbound = SCORE_LINE
            .replace("TX:ANOMALY_SCORE", "TX:OUTBOUND_ANOMALY_SCORE")
            .replace("[id \"99001\"]", "[id \"99004\"]");
        assert_eq!(parse_line(&outbound), Line::OutboundScore(20));
        let crossed = SCORE_LINE.replace("[id \"99001\"]", "[id \"99004\"]");
        assert!(matches!(parse_line(&crossed), Line::Rule(_)));
    }

    #[test]
    fn request_data_cannot_spoof_an_id_or_severity() {
        // Proto's probe: `?q=<script>"] [id "111"] [severity "7"]`; [data] is escaped by the
        // engine, but the operator value in the prefix is not.
        let probe = "ModSecurity: Warning. Matched \"Operator `Rx' with parameter `x' against variable `ARGS:q' (Value: `<script>\"] [id \"111\"] [severity \"7\"]' ) [file \"/usr/share/modsecurity-crs/rules/REQUEST-941-APPLICATION-ATTACK-XSS.conf\"] [line \"38\"] [id \"941110\"] [rev \"\"] [msg \"XSS Filter - Category 1: Script Tag Vector\"] [data \"Matched Data: <script>\\x22] [id \\x22111\\x22]\"] [severity \"2\"] [ver \"OWASP_CRS/3.3.4\"] [maturity \"0\"]";
        assert_eq!(
            parse_line(probe),
            Line::Rule(Match {
                id: 941110,
                msg: "XSS Filter - Category 1: Script Tag Vector".into(),
                severity: 2,
            })
        );
        // A full imitation of the anchored sequence in the value makes the line ambiguous:
        // it is reported as id 0, never as the imitated 111.
        let forged = "ModSecurity: Warning. Matched \"Operator `Rx' with parameter `x' against variable `ARGS:q' (Value: `[file \"a\"] [line \"1\"] [id \"111\"] [rev \"\"] [msg \"fake\"] [data \"\"] [severity \"7\"] [ver \"\"]' ) [file \"/r.conf\"] [line \"38\"] [id \"941110\"] [rev \"\"] [msg \"real\"] [data \"\"] [severity \"2\"] [ver \"OWASP_CRS/3.3.4\"]";
        match parse_line(forged) {
            Line::Rule(m) => {
                assert_eq!(m.id, 0, "{m:?}");
                assert_eq!(m.severity, 0, "{m:?}");
            }
            other => panic!("{other:?}"),
        }
        // A forged score line (the prefix cannot be reached by request data, and the value
        // is not ours) is no score either.
        let fake_score = format!("{SCORE_PREFIX}9' ) [file \"x\"] [line \"1\"] [id \"99001\"] [rev \"\"] [file \"y\"] [line \"2\"] [id \"99001\"] [rev \"\"]");
        assert!(!matches!(parse_line(&fake_score), Line::Score(_)));
    }

    #[test]
    fn lines_without_an_id_are_other() {
        assert_eq!(
            parse_line("Request body limit is marked to reject the request"),
            Line::Other
        );
        assert_eq!(parse_line(""), Line::Other);
        // A digit-free or truncated sequence is not an id.
        assert_eq!(
            parse_line("[file \"a\"] [line \"x\"] [id \"1\"] [rev \""),
            Line::Other
        );
        assert_eq!(parse_line("[file \"a\"] [line \"1\"] [id \"1"), Line::Other);
    }

    #[test]
    fn an_intervention_log_names_the_disruptive_rule() {
        let log = "[client 203.0.113.7] ModSecurity: Access denied with code 403 (phase 2). Matched \"Operator `Ge' with parameter `5' against variable `TX:ANOMALY_SCORE' (Value: `5' ) [file \"/usr/share/modsecurity-crs/rules/REQUEST-949-BLOCKING-EVALUATION.conf\"] [line \"81\"] [id \"949110\"] [rev \"\"] [msg \"Inbound Anomaly Score Exceeded (Total Score: 5)\"] [data \"\"] [severity \"2\"] [ver \"OWASP_CRS/3.3.4\"] [maturity \"0\"]";
        match parse_line(log) {
            Line::Rule(m) => {
                assert_eq!(m.id, 949110);
                assert_eq!(m.msg, "Inbound Anomaly Score Exceeded (Total Score: 5)");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_text_part_that_fails_is_refused_with_the_engine_message_and_its_name() {
        let error =
            Rules::load(&[Part::text("tuning", "SecRuleEngine On\nSecFooBar On\n")]).unwrap_err();
        assert!(error.starts_with("tuning: Rules error."), "{error}");
        assert!(error.contains("File: <tuning>. Line: 2."), "{error}");
        assert!(error.contains("SecFooBar"), "{error}");
        let rules = Rules::load(&[Part::text(
            "ok",
            "SecRuleEngine On\nSecRule ARGS \"@rx evil\" \"id:1,phase:2,deny,log\"\n",
        )])
        .unwrap();
        assert_eq!(rules.count(), 1);
    }

    #[test]
    fn an_open_transaction_runs_the_response_phases_on_its_request() {
        let rules = Arc::new(
            Rules::load(&[Part::text(
                "mini",
                "SecRuleEngine On\nSecResponseBodyAccess On\n\
                 SecResponseBodyMimeType text/html\n\
                 SecRule ARGS:a \"@rx x\" \"id:20,phase:1,pass,nolog,setvar:tx.asked=1\"\n\
                 SecRule RESPONSE_STATUS \"@streq 299\" \"id:21,phase:3,deny,log,msg:'odd status'\"\n\
                 SecRule RESPONSE_BODY \"@contains secret\" \"chain,id:22,phase:4,deny,log,msg:'leak'\"\n\
                 SecRule TX:ASKED \"@eq 1\" \"\"\n",
            )])
            .unwrap(),
        );
        let request = RequestView {
            id: "t-2",
            client_ip: "192.0.2.1",
            client_port: 0,
            server_ip: "0.0.0.0",
            server_port: 0,
            method: "GET",
            uri: b"/?a=x",
            http_version: "1.1",
            headers: vec![(&b"Host"[..], &b"example.com"[..])],
            body: None,
        };
        let response = |status: u16, kind: &'static [u8]| ResponseView {
            status,
            protocol: "HTTP 1.1",
            headers: vec![(&b"Content-Type"[..], kind)],
        };
        // The body rule sees the request's variable (tx.asked), so the transaction is one.
        let (v, tx) = inspect(&rules, &request, true);
        assert_eq!(v, Verdict::pass());
        let mut tx = tx.expect("open");
        assert_eq!(
            tx.inspect_response_headers(&response(200, b"text/html; charset=utf-8")),
            Verdict::pass()
        );
        let v = tx.inspect_response_body(b"<p>the secret is out</p>");
        assert!(v.disruptive, "{v:?}");
        assert_eq!(v.ids(), [22]);
        // Without stay_open, no transaction comes back.
        assert!(inspect(&rules, &request, false).1.is_none());
        // A type not listed: phase 4 does not run.
        let mut tx = inspect(&rules, &request, true).1.unwrap();
        tx.inspect_response_headers(&response(200, b"application/octet-stream"));
        assert_eq!(tx.inspect_response_body(b"secret"), Verdict::pass());
        // A phase-3 deny.
        let mut tx = inspect(&rules, &request, true).1.unwrap();
        let v = tx.inspect_response_headers(&response(299, b"text/html"));
        assert!(v.disruptive && v.ids() == [21], "{v:?}");
    }

    #[test]
    fn a_minimal_rules_set_denies_and_reports_through_the_callback() {
        let rules = Arc::new(
            Rules::load(&[Part::text(
                "mini",
                "SecRuleEngine On\nSecRequestBodyAccess On\n\
                 SecRule ARGS:b \"@rx odd\" \"id:11,phase:2,pass,log,msg:'odd arg',severity:4\"\n\
                 SecRule ARGS:a \"@rx evil\" \"id:10,phase:2,deny,status:418,log,msg:'evil arg',severity:2\"\n",
            )])
            .unwrap(),
        );
        let view = |uri: &'static [u8]| RequestView {
            id: "t-1",
            client_ip: "192.0.2.1",
            client_port: 0,
            server_ip: "0.0.0.0",
            server_port: 0,
            method: "GET",
            uri,
            http_version: "1.1",
            headers: vec![(&b"Host"[..], &b"example.com"[..])],
            body: None,
        };
        let v = inspect(&rules, &view(b"/?a=evil&b=odd"), false).0;
        assert!(v.disruptive);
        assert_eq!(v.status, 418);
        assert_eq!(v.ids(), [11, 10], "{v:?}");
        assert_eq!(v.rules[0].severity, 4);
        let v = inspect(&rules, &view(b"/?a=fine"), false).0;
        assert_eq!(v, Verdict::pass());
        // A NUL in the target is refused before the engine sees it.
        let v = inspect(&rules, &view(b"/\0"), false).0;
        assert!(v.disruptive && v.status == 400);
    }

    #[test]
    fn equal_parts_share_one_loaded_set_while_it_lives() {
        let parts = [Part::text(
            "shared",
            "SecRuleEngine On\nSecRule ARGS \"@rx shared-test\" \"id:5,phase:2,deny\"\n",
        )];
        let a = Rules::load_shared(&parts).unwrap();
        let b = Rules::load_shared(&parts).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        let other = [Part::text(
            "shared",
            "SecRuleEngine On\nSecRule ARGS \"@rx shared-test-2\" \"id:5,phase:2,deny\"\n",
        )];
        assert!(!Arc::ptr_eq(&a, &Rules::load_shared(&other).unwrap()));
    }

    /// Round trips through libmodsecurity with the Debian CRS (a test requirement).
    mod crs {
        use super::super::super::rules::{plan, Crs, Exclusion, Settings};
        use super::*;
        use std::path::Path;

        const CRS_DIR: &str = "/usr/share/modsecurity-crs";

        pub(crate) fn settings() -> Settings {
            Settings::for_tests()
        }

        /// The rules for `s`; the CRS must be installed (scripts/test.sh installs it).
        fn load(s: &Settings) -> Option<Result<Arc<Rules>, String>> {
            assert!(
                Path::new(CRS_DIR).exists(),
                "{CRS_DIR} is absent: apt install modsecurity-crs"
            );
            let crs = Crs::discover(Path::new(CRS_DIR)).unwrap();
            Some(Rules::load_shared(&plan(s, &crs).unwrap()))
        }

        const BROWSER: [(&str, &str); 6] = [
            ("Host", "shop.example.com"),
            (
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ),
            (
                "Accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
            ("Accept-Language", "en-US,en;q=0.5"),
            ("Accept-Encoding", "gzip, deflate, br"),
            ("Cookie", "sid=3f2a9c7be1d04a55; theme=dark"),
        ];

        fn run(
            rules: &Arc<Rules>,
            method: &str,
            uri: &str,
            extra: &[(&str, &str)],
            body: Option<&str>,
        ) -> Verdict {
            run_open(rules, method, uri, extra, body, false).0
        }

        fn run_open(
            rules: &Arc<Rules>,
            method: &str,
            uri: &str,
            extra: &[(&str, &str)],
            body: Option<&str>,
            stay_open: bool,
        ) -> (Verdict, Option<Transaction>) {
            let length = body.map(|b| b.len().to_string());
            let mut headers: Vec<(&[u8], &[u8])> = BROWSER
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
                .collect();
            if let Some(length) = &length {
                headers.push((b"Content-Length", length.as_bytes()));
            }
            inspect(
                rules,
                &RequestView {
                    id: "test-1",
                    client_ip: "203.0.113.7",
                    client_port: 51234,
                    server_ip: "127.0.0.1",
                    server_port: 8080,
                    method,
                    uri: uri.as_bytes(),
                    http_version: "1.1",
                    headers,
                    body: body.map(str::as_bytes),
                },
                stay_open,
            )
        }

        const SQLI_GET: &str = "/search?id=1%27%20OR%20%271%27%3D%271";
        const JSON: [(&str, &str); 1] = [("Content-Type", "application/json")];
        const FORM: [(&str, &str); 1] = [("Content-Type", "application/x-www-form-urlencoded")];

        #[test]
        fn sql_injection_in_the_query_is_denied_by_942100() {
            let Some(rules) = load(&settings()) else {
                return;
            };
            let rules = rules.unwrap();
            assert!(rules.count() > 500, "{}", rules.count());
            let v = run(&rules, "GET", SQLI_GET, &[], None);
            assert!(v.disruptive, "{v:?}");
            assert_eq!(v.status, 403);
            assert!(v.ids().contains(&942100), "{v:?}");
            assert!(v.ids().contains(&949110), "{v:?}");
            assert!(!v.ids().contains(&SCORE_RULE_ID));
            assert_eq!(v.score, 5);
            let m = v.rules.iter().find(|m| m.id == 942100).unwrap();
            assert_eq!(m.severity, 2);
            assert!(m.msg.contains("SQL Injection"), "{m:?}");
        }

        #[test]
        fn benign_requests_pass_with_score_0() {
            let Some(rules) = load(&settings()) else {
                return;
            };
            let rules = rules.unwrap();
            let v = run(
                &rules,
                "GET",
                "/index.html?q=blue%20shoes&page=2",
                &[],
                None,
            );
            assert_eq!(v, Verdict::pass());
            let body = r#"{"name":"Alice Example","email":"alice@example.com","items":[1,2,3],"note":"please deliver after five, thanks"}"#;
            let v = run(&rules, "POST", "/api/orders", &JSON, Some(body));
            assert_eq!(v, Verdict::pass());
            let v = run(
                &rules,
                "POST",
                "/login",
                &FORM,
                Some("user=ann&password=correct+horse"),
            );
            assert_eq!(v, Verdict::pass());
        }

        #[test]
        fn bodies_are_inspected_by_content_type() {
            let Some(rules) = load(&settings()) else {
                return;
            };
            let rules = rules.unwrap();
            let xss = r#"{"comment":"<script>alert(document.cookie)</script>","n":1}"#;
            let v = run(&rules, "POST", "/api/comments", &JSON, Some(xss));
            assert!(v.disruptive, "{v:?}");
            assert!(v.ids().contains(&941100), "{v:?}");
            assert!(v.score >= 20, "{v:?}");
            let v = run(
                &rules,
                "POST",
                "/login",
                &FORM,
                Some("user=admin&password=x%27+OR+1%3D1--+"),
            );
            assert!(v.disruptive && v.ids().contains(&942100), "{v:?}");
            let xml = [("Content-Type", "application/xml")];
            let v = run(
                &rules,
                "POST",
                "/soap",
                &xml,
                Some("<q><id>1' OR '1'='1</id></q>"),
            );
            assert!(v.disruptive && v.ids().contains(&942100), "{v:?}");
            let multipart = [("Content-Type", "multipart/form-data; boundary=XyZb0und")];
            let body = "--XyZb0und\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nholiday\r\n--XyZb0und\r\nContent-Disposition: form-data; name=\"file\"; filename=\"shell.php\"\r\nContent-Type: application/octet-stream\r\n\r\n<?php echo 'hi'; ?>\r\n--XyZb0und--\r\n";
            let v = run(&rules, "POST", "/upload", &multipart, Some(body));
            assert!(v.disruptive && v.ids().contains(&933110), "{v:?}");
            // JSON media types with a suffix are parsed as JSON too (the content type itself
            // is not in the CRS's default allowed list: 920420 fires as well).
            let vnd = [("Content-Type", "application/vnd.api+json")];
            let v = run(&rules, "POST", "/api/comments", &vnd, Some(xss));
            assert!(v.ids().contains(&941100), "{v:?}");
            // Arguments beyond the engine's limit would be skipped: reaching it is refused.
            let mut padded: String = (0..1000).map(|i| format!("a{i}=1&")).collect();
            padded.push_str("z=1%27%20OR%20%271%27%3D%271");
            let v = run(&rules, "POST", "/f", &FORM, Some(&padded));
            assert!(
                v.disruptive && v.status == 400 && v.ids().contains(&200004),
                "{v:?}"
            );
            let padded: String = (0..998).map(|i| format!("a{i}=1&")).collect();
            let v = run(&rules, "POST", "/f", &FORM, Some(&padded));
            assert!(!v.disruptive, "{v:?}");
            // A JSON body that does not parse is refused by our body-error rule.
            let v = run(&rules, "POST", "/api", &JSON, Some("{\"a\":"));
            assert!(
                v.disruptive && v.status == 400 && v.ids() == [200002],
                "{v:?}"
            );
        }

        #[test]
        fn detect_mode_passes_but_reports() {
            let mut s = settings();
            s.detect = true;
            let Some(rules) = load(&s) else { return };
            let v = run(&rules.unwrap(), "GET", SQLI_GET, &[], None);
            assert!(!v.disruptive, "{v:?}");
            assert_eq!(v.status, 200);
            assert!(
                v.ids().contains(&942100) && v.ids().contains(&949110),
                "{v:?}"
            );
            assert_eq!(v.score, 5);
        }

        #[test]
        fn request_data_in_the_log_lines_does_not_change_attribution() {
            let Some(rules) = load(&settings()) else {
                return;
            };
            let probe = "/?q=%3Cscript%3E%22%5D%20%5Bid%20%22111%22%5D%20%5Bseverity%20%227%22%5D";
            let v = run(&rules.unwrap(), "GET", probe, &[], None);
            assert!(v.disruptive);
            assert!(!v.ids().contains(&111), "{v:?}");
            assert!(v.ids().contains(&941100), "{v:?}");
            assert!(v.rules.iter().all(|m| m.severity != 7), "{v:?}");
        }

        #[test]
        fn scanners_are_still_scored_with_the_collection_guard() {
            let Some(rules) = load(&settings()) else {
                return;
            };
            let v = run(
                &rules.unwrap(),
                "GET",
                "/",
                &[("User-Agent", "sqlmap/1.7.2#stable")],
                None,
            );
            assert!(v.disruptive && v.ids().contains(&913100), "{v:?}");
        }

        #[test]
        fn a_broken_rules_file_is_refused_naming_file_and_line() {
            let path =
                std::env::temp_dir().join(format!("tidegate-waf-bad-{}.conf", std::process::id()));
            std::fs::write(
                &path,
                "# ok\nSecRule ARGS \"@rx evil\" \"id:5000,phase:2,deny,log\"\nSecFooBar On\n",
            )
            .unwrap();
            let mut s = settings();
            s.rules_file = Some(path.clone());
            let Some(result) = load(&s) else { return };
            let e = result.unwrap_err();
            std::fs::remove_file(&path).unwrap();
            assert!(e.starts_with("rules_file: Rules error."), "{e}");
            assert!(
                e.contains(&format!("File: {}. Line: 3.", path.display())),
                "{e}"
            );
            assert!(e.contains("SecFooBar"), "{e}");
        }

        #[test]
        fn an_operator_rules_file_runs_after_the_crs() {
            let path =
                std::env::temp_dir().join(format!("tidegate-waf-own-{}.conf", std::process::id()));
            std::fs::write(
                &path,
                "SecRule ARGS:secret \"@streq opensesame\" \"id:5001,phase:2,deny,status:451,log,msg:'no'\"\n",
            )
            .unwrap();
            let mut s = settings();
            s.rules_file = Some(path.clone());
            let Some(result) = load(&s) else { return };
            let rules = result.unwrap();
            std::fs::remove_file(&path).unwrap();
            let v = run(&rules, "GET", "/?secret=opensesame", &[], None);
            assert!(
                v.disruptive && v.status == 451 && v.ids() == [5001],
                "{v:?}"
            );
        }

        #[test]
        fn exclusions_by_id_and_by_path_and_param_let_a_request_pass() {
            let mut by_id = settings();
            by_id.exclusions = vec![Exclusion {
                ids: vec![942100],
                ..Exclusion::default()
            }];
            let Some(rules) = load(&by_id) else { return };
            let v = run(&rules.unwrap(), "GET", SQLI_GET, &[], None);
            assert!(!v.disruptive && !v.ids().contains(&942100), "{v:?}");

            let mut by_path = settings();
            by_path.exclusions = vec![Exclusion {
                ids: vec![942100],
                path: Some("/login".into()),
                params: vec!["password".into()],
                ..Exclusion::default()
            }];
            let rules = load(&by_path).unwrap().unwrap();
            let form = "user=bob&password=x%27+OR+1%3D1--+";
            let v = run(&rules, "POST", "/login", &FORM, Some(form));
            assert!(!v.disruptive, "{v:?}");
            let v = run(&rules, "POST", "/other", &FORM, Some(form));
            assert!(v.disruptive, "{v:?}");
            // Another parameter on the excluded path is still inspected.
            let v = run(
                &rules,
                "POST",
                "/login",
                &FORM,
                Some("user=x%27+OR+1%3D1--+"),
            );
            assert!(v.disruptive, "{v:?}");
        }

        #[test]
        fn one_rules_set_serves_threads_in_parallel() {
            let Some(rules) = load(&settings()) else {
                return;
            };
            let rules = rules.unwrap();
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let rules = rules.clone();
                    std::thread::spawn(move || {
                        for n in 0..40 {
                            let attack = (i + n) % 2 == 0;
                            let uri = if attack { SQLI_GET } else { "/search?q=shoes" };
                            assert_eq!(run(&rules, "GET", uri, &[], None).disruptive, attack);
                        }
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
    }
}

//! The SecLang a set of WAF settings loads, in the order the CRS needs:
//!
//! 1. engine config (ours; replaces `modsecurity.conf`): rule engine, body access and
//!    limits, audit log off, the JSON/XML body processors and body-error rules;
//! 2. CRS setup: our generated text (`SecDefaultAction`s that make the CRS score,
//!    `tx.crs_setup_version`) or the operator's `crs_setup` file;
//! 3. tuning: paranoia level, anomaly thresholds, allowed methods and content types as
//!    phase-1 `SecAction`s — before REQUEST-901, which only sets what is still unset;
//! 4. path exclusions: runtime `ctl:` rules in phase 1, before the rules they change;
//! 5. the CRS rule files, in name order, without IP reputation (910) and DoS (912), which
//!    write the shared IP collection (not safe to read concurrently in libmodsecurity 3.0.9);
//! 6. configure-time exclusions (`SecRuleRemoveById`/`…ByTag`, `SecRuleUpdateTarget…`) and
//!    the collection guard (below);
//! 7. the operator's own `rules_file`;
//! 8. the score rules, which report the anomaly scores to the log callback: 99003 (end of
//!    phase 2) and 99001 (phase 5) the inbound score, 99004 (phase 5) the outbound one.
//!
//! Every value that goes into the text is checked against a strict character set rather
//! than escaped, so nothing a config says can end a quoted string or add an action.
//!
//! Rule ids of our own: 200000–200004 (engine config, as upstream's recommended config, and
//! the argument-count guard),
//! 10000–19999 (path exclusions), 99001/99003/99004 (scores), 99002 (collection guard),
//! 99100–99103 (tuning). CRS owns 900000–999999.

use super::engine::{Part, OUTBOUND_SCORE_RULE_ID, REQUEST_SCORE_RULE_ID, SCORE_RULE_ID};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The settings one rules set is built from (the plugin's config, with a route's overrides
/// applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `SecRuleEngine DetectionOnly` instead of `On`.
    pub detect: bool,
    pub paranoia_level: u8,
    pub inbound_threshold: u32,
    pub outbound_threshold: u32,
    /// `None`: the CRS default (GET HEAD POST OPTIONS).
    pub allowed_methods: Option<Vec<String>>,
    /// `None`: the CRS default list.
    pub allowed_content_types: Option<Vec<String>>,
    /// Body bytes the engine takes (the gateway refuses or skips larger bodies first).
    pub max_body: usize,
    /// The operator's CRS setup file instead of our generated setup.
    pub crs_setup: Option<PathBuf>,
    /// The operator's own SecLang, loaded after the CRS.
    pub rules_file: Option<PathBuf>,
    pub exclusions: Vec<Exclusion>,
    /// How responses are inspected; `None`: not at all (the request side only).
    pub responses: Option<Responses>,
}

/// Response inspection: status and headers always (phase 3), and a bounded prefix of the
/// body (phase 4) for these content types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Responses {
    /// Body bytes the engine takes (`SecResponseBodyLimit`, the rest passes uninspected).
    pub body_limit: usize,
    /// Content types (without parameters, lower case) whose bodies are inspected.
    pub body_types: Vec<String>,
}

/// One exclusion, in CRS `ctl:` terms: which rules (ids and/or tags; none: all CRS rules),
/// where (a path prefix; none: everywhere) and on what (parameters; none: the whole rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exclusion {
    pub ids: Vec<u32>,
    pub tags: Vec<String>,
    pub path: Option<String>,
    pub params: Vec<String>,
}

/// The CRS rule files to load, and the setup version they expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crs {
    pub files: Vec<PathBuf>,
    /// For `tx.crs_setup_version` (334 for CRS 3.3.4).
    pub setup_version: u32,
}

/// Rule files of the CRS that are not loaded: they write the IP collection.
const SKIPPED: [&str; 2] = ["REQUEST-910-", "REQUEST-912-"];

/// The tag every CRS rule carries: "all rules" for an exclusion without ids or tags.
const ALL_CRS: &str = "OWASP_CRS";

/// Arguments the engine parses per request. libmodsecurity 3.0.9 silently skips those
/// beyond (an attack after 1000 padding fields would pass), so reaching it is refused
/// (rule 200004); each argument costs ~50 µs, so the limit also bounds the CPU per request.
const ARGUMENTS_LIMIT: u32 = 1000;

/// First id of the generated path-exclusion rules.
const FIRST_PATH_RULE: u32 = 10000;
const MAX_PATH_RULES: usize = 10000;

impl Crs {
    /// The rule files under `dir` (`dir/rules/*.conf`, or `dir/*.conf`), in name order,
    /// without the skipped ones; refused when there is no CRS there.
    pub fn discover(dir: &Path) -> Result<Crs, String> {
        let rules = dir.join("rules");
        let rules = if rules.is_dir() {
            rules
        } else {
            dir.to_path_buf()
        };
        let entries =
            std::fs::read_dir(&rules).map_err(|e| format!("crs_dir {}: {e}", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "conf"))
            .filter(|p| {
                let name = file_name(p);
                !SKIPPED.iter().any(|s| name.starts_with(s))
            })
            .collect();
        files.sort();
        let Some(init) = files
            .iter()
            .find(|p| file_name(p).starts_with("REQUEST-901-"))
        else {
            return Err(format!(
                "crs_dir {}: no OWASP CRS there (no REQUEST-901-*.conf in {})",
                dir.display(),
                rules.display()
            ));
        };
        let setup_version = std::fs::read_to_string(init)
            .ok()
            .and_then(|text| version_of(&text))
            .unwrap_or(334);
        Ok(Crs {
            files,
            setup_version,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `SecComponentSignature "OWASP_CRS/3.3.4"` (or a rule's `ver:'OWASP_CRS/3.3.4'`) → 334.
/// Comments may name other versions, so only those two forms count.
fn version_of(text: &str) -> Option<u32> {
    let marker = ["SecComponentSignature \"OWASP_CRS/", "ver:'OWASP_CRS/"]
        .into_iter()
        .find_map(|m| text.find(m).map(|at| at + m.len()))?;
    let at = marker;
    let version: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .filter(char::is_ascii_digit)
        .collect();
    version.parse().ok().filter(|v| *v > 0)
}

/// The parts to load for `s`, in order. Checks every value that goes into the text.
pub fn plan(s: &Settings, crs: &Crs) -> Result<Vec<Part>, String> {
    if !(1..=4).contains(&s.paranoia_level) {
        return Err("paranoia_level is 1, 2, 3 or 4".into());
    }
    if s.inbound_threshold == 0 || s.outbound_threshold == 0 {
        return Err("anomaly thresholds are at least 1".into());
    }
    if s.max_body == 0 {
        return Err("max_body is at least 1".into());
    }
    if let Some(r) = &s.responses {
        if r.body_limit == 0 {
            return Err("response_body_limit is at least 1".into());
        }
        for t in &r.body_types {
            check(t, "response_body_types", |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || "/.+-_".contains(c)
            })?;
            if t.matches('/').count() != 1 {
                return Err(format!("response_body_types: {t:?} is not a type/subtype"));
            }
        }
    }
    let mut parts = vec![Part::text("engine config", engine_config(s))];
    parts.push(match &s.crs_setup {
        Some(path) => Part::file("crs_setup", path),
        None => Part::text("crs setup", crs_setup(crs.setup_version)),
    });
    parts.push(Part::text("tuning", tuning(s)?));
    let (before, after) = exclusions(&s.exclusions)?;
    if !before.is_empty() {
        parts.push(Part::text("exclusions before the CRS", before));
    }
    for file in &crs.files {
        parts.push(Part::file("CRS", file));
    }
    parts.push(Part::text("exclusions after the CRS", after));
    if let Some(path) = &s.rules_file {
        parts.push(Part::file("rules_file", path));
    }
    parts.push(Part::text("score rules", score_rules()));
    Ok(parts)
}

/// The whole plan as one SecLang text (files as `Include` lines): what tests read, and a
/// faithful picture of what is loaded.
pub fn render(parts: &[Part]) -> String {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text { name, text } => {
                let _ = write!(out, "# {name}\n{text}");
            }
            Part::File { name, path } => {
                let _ = writeln!(out, "# {name}\nInclude {}", path.display());
            }
        }
    }
    out
}

fn engine_config(s: &Settings) -> String {
    let engine = if s.detect { "DetectionOnly" } else { "On" };
    let limit = s.max_body;
    let responses = match &s.responses {
        // ProcessPartial: a longer body is inspected up to the limit and passes on, as the
        // gateway passes it (it holds back no more than the limit).
        Some(r) if !r.body_types.is_empty() => format!(
            "SecResponseBodyAccess On\n\
             SecResponseBodyMimeType {}\n\
             SecResponseBodyLimit {}\n\
             SecResponseBodyLimitAction ProcessPartial\n",
            r.body_types.join(" "),
            r.body_limit
        ),
        _ => "SecResponseBodyAccess Off\n".to_string(),
    };
    format!(
        "SecRuleEngine {engine}\n\
         SecRequestBodyAccess On\n\
         SecRequestBodyLimit {limit}\n\
         SecRequestBodyNoFilesLimit {limit}\n\
         SecRequestBodyLimitAction Reject\n\
         SecRequestBodyJsonDepthLimit 512\n\
         SecArgumentsLimit {ARGUMENTS_LIMIT}\n\
         {responses}\
         SecAuditEngine Off\n\
         SecPcreMatchLimit 1000\n\
         SecPcreMatchLimitRecursion 1000\n\
         SecArgumentSeparator &\n\
         SecCookieFormat 0\n\
         SecRule REQUEST_HEADERS:Content-Type \"^(?:application(?:/soap\\+|/)|text/)xml\" \
         \"id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML\"\n\
         SecRule REQUEST_HEADERS:Content-Type \"^application/(?:[a-z0-9.-]+\\+)?json\" \
         \"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n\
         SecRule REQBODY_ERROR \"!@eq 0\" \
         \"id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',\
         logdata:'%{{reqbody_error_msg}}',severity:2\"\n\
         SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \
         \"id:200003,phase:2,t:none,log,deny,status:400,\
         msg:'Multipart request body failed strict validation'\"\n\
         SecRule &ARGS \"@ge {ARGUMENTS_LIMIT}\" \
         \"id:200004,phase:2,t:none,log,deny,status:400,\
         msg:'Too many arguments (the engine would skip those beyond {ARGUMENTS_LIMIT})'\"\n"
    )
}

/// The active lines of Debian's crs-setup.conf (no collection timeout: we keep no
/// collections).
fn crs_setup(version: u32) -> String {
    format!(
        "SecDefaultAction \"phase:1,log,auditlog,pass\"\n\
         SecDefaultAction \"phase:2,log,auditlog,pass\"\n\
         SecAction \"id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version={version}\"\n"
    )
}

fn tuning(s: &Settings) -> Result<String, String> {
    let pl = s.paranoia_level;
    let mut out = format!(
        // CRS 3 reads tx.paranoia_level, CRS 4 tx.blocking_paranoia_level.
        "SecAction \"id:99100,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level={pl},\
         setvar:tx.blocking_paranoia_level={pl}\"\n\
         SecAction \"id:99101,phase:1,nolog,pass,t:none,\
         setvar:tx.inbound_anomaly_score_threshold={},\
         setvar:tx.outbound_anomaly_score_threshold={}\"\n",
        s.inbound_threshold, s.outbound_threshold
    );
    if let Some(methods) = &s.allowed_methods {
        if methods.is_empty() {
            return Err("allowed_methods must not be empty".into());
        }
        for m in methods {
            check(m, "allowed_methods", |c| {
                c.is_ascii_alphanumeric() || "-_.!#&*+^~".contains(c)
            })?;
        }
        let _ = writeln!(
            out,
            "SecAction \"id:99102,phase:1,nolog,pass,t:none,setvar:'tx.allowed_methods={}'\"",
            methods.join(" ")
        );
    }
    if let Some(types) = &s.allowed_content_types {
        if types.is_empty() {
            return Err("allowed_content_types must not be empty".into());
        }
        let mut list = Vec::with_capacity(types.len());
        for t in types {
            let t = t.to_ascii_lowercase();
            check(&t, "allowed_content_types", |c| {
                c.is_ascii_alphanumeric() || "-_.!#&*+^~/".contains(c)
            })?;
            if t.matches('/').count() != 1 || t.starts_with('/') || t.ends_with('/') {
                return Err(format!(
                    "allowed_content_types: {t:?} is not a media type (type/subtype)"
                ));
            }
            list.push(format!("|{t}|"));
        }
        let _ = writeln!(
            out,
            "SecAction \"id:99103,phase:1,nolog,pass,t:none,\
             setvar:'tx.allowed_request_content_type={}'\"",
            list.join(" ")
        );
    }
    Ok(out)
}

/// The text before the CRS (path rules) and after it (configure-time exclusions and the
/// collection guard).
fn exclusions(list: &[Exclusion]) -> Result<(String, String), String> {
    let mut before = String::new();
    let mut after = String::new();
    let mut next_id = FIRST_PATH_RULE;
    for ex in list {
        if ex.ids.is_empty() && ex.tags.is_empty() && ex.path.is_none() && ex.params.is_empty() {
            return Err("an exclusion needs ids, tags, a path or params".into());
        }
        if ex.ids.contains(&0) {
            return Err("exclusions: rule ids start at 1".into());
        }
        for tag in &ex.tags {
            check(tag, "exclusion tags", |c| {
                c.is_ascii_alphanumeric() || "-_./".contains(c)
            })?;
        }
        let mut targets = Vec::with_capacity(ex.params.len());
        for param in &ex.params {
            check(param, "exclusion params", |c| {
                c.is_ascii_alphanumeric() || "-_.[]@".contains(c)
            })?;
            targets.push(format!("ARGS:{param}"));
        }
        // No ids and no tags: every CRS rule.
        let all_tags = [ALL_CRS.to_string()];
        let tags: &[String] = if ex.ids.is_empty() && ex.tags.is_empty() {
            &all_tags
        } else {
            &ex.tags
        };
        match &ex.path {
            None => {
                if targets.is_empty() {
                    for id in &ex.ids {
                        let _ = writeln!(after, "SecRuleRemoveById {id}");
                    }
                    for tag in tags {
                        let _ = writeln!(after, "SecRuleRemoveByTag \"{tag}\"");
                    }
                } else {
                    for target in &targets {
                        for id in &ex.ids {
                            let _ = writeln!(after, "SecRuleUpdateTargetById {id} \"!{target}\"");
                        }
                        for tag in tags {
                            let _ =
                                writeln!(after, "SecRuleUpdateTargetByTag \"{tag}\" \"!{target}\"");
                        }
                    }
                }
            }
            Some(path) => {
                check_path(path)?;
                let mut ctls = Vec::new();
                if ex.ids.is_empty() && ex.tags.is_empty() && targets.is_empty() {
                    // A path alone: the WAF is off below it.
                    ctls.push("ctl:ruleEngine=Off".to_string());
                } else if targets.is_empty() {
                    ctls.extend(ex.ids.iter().map(|id| format!("ctl:ruleRemoveById={id}")));
                    ctls.extend(tags.iter().map(|t| format!("ctl:ruleRemoveByTag={t}")));
                } else {
                    for target in &targets {
                        ctls.extend(
                            ex.ids
                                .iter()
                                .map(|id| format!("ctl:ruleRemoveTargetById={id};{target}")),
                        );
                        ctls.extend(
                            tags.iter()
                                .map(|t| format!("ctl:ruleRemoveTargetByTag={t};{target}")),
                        );
                    }
                }
                if next_id >= FIRST_PATH_RULE + MAX_PATH_RULES as u32 {
                    return Err(format!("at most {MAX_PATH_RULES} path exclusions"));
                }
                let _ = writeln!(
                    before,
                    "SecRule REQUEST_FILENAME \"@beginsWith {path}\" \
                     \"id:{next_id},phase:1,pass,nolog,t:none,{}\"",
                    ctls.join(",")
                );
                next_id += 1;
            }
        }
    }
    // The collection guard. CRS 3.3 writes IP:REPUT_BLOCK_FLAG on a scanner match (913xxx)
    // and reads it on every request (949100, which only acts with tx.do_reput_block, an IP
    // reputation feature we do not offer). libmodsecurity 3.0.9 reads collections without a
    // lock, so: no reader, and one fixed collection key, so the writes cannot grow a map
    // per client either.
    after.push_str(
        "SecRuleRemoveById 949100\n\
         SecAction \"id:99002,phase:1,pass,nolog,t:none,initcol:global=tidegate,initcol:ip=tidegate\"\n",
    );
    Ok((before, after))
}

fn score_rules() -> String {
    format!(
        "SecRule TX:ANOMALY_SCORE \"@gt 0\" \"id:{REQUEST_SCORE_RULE_ID},phase:2,pass,log,\
         msg:'tidegate score inbound=%{{tx.anomaly_score}}'\"\n\
         SecRule TX:ANOMALY_SCORE \"@gt 0\" \"id:{SCORE_RULE_ID},phase:5,pass,log,\
         msg:'tidegate score inbound=%{{tx.anomaly_score}} outbound=%{{tx.outbound_anomaly_score}}'\"\n\
         SecRule TX:OUTBOUND_ANOMALY_SCORE \"@gt 0\" \"id:{OUTBOUND_SCORE_RULE_ID},phase:5,pass,log,\
         msg:'tidegate score outbound=%{{tx.outbound_anomaly_score}}'\"\n"
    )
}

/// `value` is non-empty and every character passes `ok`.
fn check(value: &str, what: &str, ok: impl Fn(char) -> bool) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what}: an empty value"));
    }
    match value.chars().find(|c| !ok(*c)) {
        Some(c) => Err(format!("{what}: {value:?} may not contain {c:?}")),
        None => Ok(()),
    }
}

/// A path prefix as the engine sees it (decoded): `/`, then URL path characters.
fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("exclusion path {path:?} must start with /"));
    }
    check(path, "exclusion path", |c| {
        c.is_ascii_alphanumeric() || "-._~!$&()*+,;=:@/".contains(c)
    })
    .map_err(|e| format!("{e} (paths are matched decoded; no quotes, spaces or %)"))
}

/// Refuses a `crs_setup` file that does not set `tx.crs_setup_version` (without it CRS rule
/// 901001 refuses every request with 500).
pub fn check_setup_file(path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("crs_setup {}: {e}", path.display()))?;
    if text.to_ascii_lowercase().contains("tx.crs_setup_version") {
        Ok(())
    } else {
        Err(format!(
            "crs_setup {}: does not set tx.crs_setup_version (the CRS would refuse every request)",
            path.display()
        ))
    }
}

/// Refuses an operator rules file that uses persistent collections (IP, GLOBAL, …):
/// libmodsecurity 3.0.9 reads them without a lock while other threads write.
pub fn check_rules_file(path: &Path) -> Result<(), String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("rules_file {}: {e}", path.display()))?;
    check_rules_text(&text).map_err(|e| format!("rules_file {}: {e}", path.display()))
}

/// The collection check of [`check_rules_file`], on the text.
pub fn check_rules_text(text: &str) -> Result<(), String> {
    const COLLECTIONS: [&str; 5] = ["ip", "global", "resource", "session", "user"];
    let lower = text.to_ascii_lowercase();
    for (n, line) in lower.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        for action in ["initcol:", "setsid:", "setuid:"] {
            if line.contains(action) {
                return Err(format!(
                    "line {}: `{}` opens a persistent collection, which is not supported",
                    n + 1,
                    action.trim_end_matches(':')
                ));
            }
        }
        for action in ["setvar:", "expirevar:"] {
            let mut from = 0;
            while let Some(at) = line[from..].find(action) {
                let rest = &line[from + at + action.len()..];
                let rest = rest.trim_start_matches(['\'', '"', '!']);
                if let Some(c) = COLLECTIONS
                    .iter()
                    .find(|c| rest.strip_prefix(**c).is_some_and(|r| r.starts_with('.')))
                {
                    return Err(format!(
                        "line {}: `{action}{c}.…` writes the persistent {} collection, \
                         which is not supported (use tx.*)",
                        n + 1,
                        c.to_ascii_uppercase()
                    ));
                }
                from += at + action.len();
            }
        }
    }
    Ok(())
}

/// PL1, block mode, the CRS's own thresholds, nothing excluded: what tests start from.
#[cfg(test)]
impl Settings {
    pub(crate) fn for_tests() -> Settings {
        Settings {
            detect: false,
            paranoia_level: 1,
            inbound_threshold: 5,
            outbound_threshold: 4,
            allowed_methods: None,
            allowed_content_types: None,
            max_body: 65536,
            crs_setup: None,
            rules_file: None,
            exclusions: Vec::new(),
            responses: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::for_tests()
    }

    fn crs() -> Crs {
        Crs {
            files: vec![
                "/crs/rules/REQUEST-901-INITIALIZATION.conf".into(),
                "/crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf".into(),
                "/crs/rules/RESPONSE-980-CORRELATION.conf".into(),
            ],
            setup_version: 334,
        }
    }

    fn text(s: &Settings) -> String {
        render(&plan(s, &crs()).unwrap())
    }

    /// Byte offset of `needle` in `hay`, or a failure naming it.
    fn at(hay: &str, needle: &str) -> usize {
        hay.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{hay}"))
    }

    #[test]
    fn the_parts_come_in_the_order_the_crs_needs() {
        let mut s = settings();
        s.rules_file = Some("/etc/tidegate/waf.conf".into());
        s.exclusions = vec![
            Exclusion {
                ids: vec![942100],
                path: Some("/api/notes/".into()),
                params: vec!["content".into()],
                ..Exclusion::default()
            },
            Exclusion {
                ids: vec![920350],
                ..Exclusion::default()
            },
        ];
        let t = text(&s);
        let order = [
            "SecRuleEngine On\n",
            "SecRequestBodyLimit 65536\n",
            "SecResponseBodyAccess Off\n",
            "SecAuditEngine Off\n",
            "ctl:requestBodyProcessor=JSON",
            "SecRule &ARGS \"@ge 1000\" \"id:200004,phase:2,t:none,log,deny,status:400,",
            "SecDefaultAction \"phase:2,log,auditlog,pass\"",
            "setvar:tx.crs_setup_version=334",
            "setvar:tx.paranoia_level=1,",
            "setvar:tx.inbound_anomaly_score_threshold=5,",
            "setvar:tx.outbound_anomaly_score_threshold=4",
            "SecRule REQUEST_FILENAME \"@beginsWith /api/notes/\" \"id:10000,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=942100;ARGS:content\"",
            "Include /crs/rules/REQUEST-901-INITIALIZATION.conf\n",
            "Include /crs/rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\n",
            "Include /crs/rules/RESPONSE-980-CORRELATION.conf\n",
            "SecRuleRemoveById 920350\n",
            "SecRuleRemoveById 949100\n",
            "initcol:ip=tidegate",
            "Include /etc/tidegate/waf.conf\n",
            "SecRule TX:ANOMALY_SCORE \"@gt 0\" \"id:99001,phase:5,pass,log,",
        ];
        let offsets: Vec<usize> = order.iter().map(|n| at(&t, n)).collect();
        assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}\n{t}");
        // No audit log file, no debug log, no unset allowed-lists.
        assert!(!t.contains("SecAuditLog "), "{t}");
        assert!(!t.contains("SecDebugLog"), "{t}");
        assert!(!t.contains("tx.allowed_methods"), "{t}");
        assert!(!t.contains("tx.allowed_request_content_type"), "{t}");
        // Files are loaded as files, so the engine names them in errors.
        let parts = plan(&s, &crs()).unwrap();
        assert!(parts.contains(&Part::file("rules_file", "/etc/tidegate/waf.conf")));
        assert_eq!(parts.last().unwrap().name(), "score rules");
    }

    #[test]
    fn response_inspection_turns_body_access_on_for_the_listed_types() {
        let mut s = settings();
        s.responses = Some(Responses {
            body_limit: 4096,
            body_types: vec!["text/html".into(), "application/json".into()],
        });
        let t = text(&s);
        assert!(
            t.contains(
                "SecResponseBodyAccess On\nSecResponseBodyMimeType text/html application/json\n\
                 SecResponseBodyLimit 4096\nSecResponseBodyLimitAction ProcessPartial\n"
            ),
            "{t}"
        );
        assert!(!t.contains("SecResponseBodyAccess Off"), "{t}");
        // The scores are reported at the end of phase 2 (inbound, for an open transaction)
        // and in phase 5 (both).
        assert!(t.contains("id:99003,phase:2,pass,log,"), "{t}");
        assert!(t.contains("SecRule TX:OUTBOUND_ANOMALY_SCORE \"@gt 0\" \"id:99004,phase:5,"));
        // Without types there is no body to read.
        s.responses = Some(Responses {
            body_limit: 4096,
            body_types: Vec::new(),
        });
        assert!(text(&s).contains("SecResponseBodyAccess Off\n"));
    }

    #[test]
    fn detect_mode_paranoia_and_allowed_lists_are_set() {
        let mut s = settings();
        s.detect = true;
        s.paranoia_level = 3;
        s.inbound_threshold = 10;
        s.max_body = 1000;
        s.allowed_methods = Some(vec!["GET".into(), "POST".into(), "PATCH".into()]);
        s.allowed_content_types = Some(vec!["application/JSON".into(), "text/plain".into()]);
        let t = text(&s);
        assert!(
            t.starts_with("# engine config\nSecRuleEngine DetectionOnly\n"),
            "{t}"
        );
        assert!(t.contains("SecRequestBodyLimit 1000\nSecRequestBodyNoFilesLimit 1000\n"));
        assert!(t.contains("setvar:tx.paranoia_level=3,setvar:tx.blocking_paranoia_level=3"));
        assert!(t.contains("setvar:tx.inbound_anomaly_score_threshold=10,"));
        assert!(
            t.contains("setvar:'tx.allowed_methods=GET POST PATCH'\""),
            "{t}"
        );
        assert!(
            t.contains(
                "setvar:'tx.allowed_request_content_type=|application/json| |text/plain|'\""
            ),
            "{t}"
        );
    }

    #[test]
    fn each_kind_of_exclusion_maps_to_its_directive() {
        let ex = |ids: &[u32], tags: &[&str], path: Option<&str>, params: &[&str]| Exclusion {
            ids: ids.to_vec(),
            tags: tags.iter().map(ToString::to_string).collect(),
            path: path.map(str::to_string),
            params: params.iter().map(ToString::to_string).collect(),
        };
        let mut s = settings();
        s.exclusions = vec![
            ex(&[942100, 942200], &[], None, &[]),
            ex(&[], &["attack-sqli"], None, &[]),
            ex(&[941100], &["attack-xss"], None, &["comment", "user[bio]"]),
            ex(&[], &[], None, &["json.body.html"]),
            ex(&[942100], &[], Some("/login"), &[]),
            ex(&[], &["attack-rce"], Some("/admin/"), &["cmd"]),
            ex(&[], &[], Some("/webhooks/"), &[]),
            ex(&[], &[], Some("/upload"), &["file"]),
        ];
        let t = text(&s);
        for line in [
            "SecRuleRemoveById 942100\nSecRuleRemoveById 942200\n",
            "SecRuleRemoveByTag \"attack-sqli\"\n",
            "SecRuleUpdateTargetById 941100 \"!ARGS:comment\"\n",
            "SecRuleUpdateTargetByTag \"attack-xss\" \"!ARGS:comment\"\n",
            "SecRuleUpdateTargetById 941100 \"!ARGS:user[bio]\"\n",
            "SecRuleUpdateTargetByTag \"OWASP_CRS\" \"!ARGS:json.body.html\"\n",
            "SecRule REQUEST_FILENAME \"@beginsWith /login\" \"id:10000,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=942100\"\n",
            "SecRule REQUEST_FILENAME \"@beginsWith /admin/\" \"id:10001,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=attack-rce;ARGS:cmd\"\n",
            "SecRule REQUEST_FILENAME \"@beginsWith /webhooks/\" \"id:10002,phase:1,pass,nolog,t:none,ctl:ruleEngine=Off\"\n",
            "SecRule REQUEST_FILENAME \"@beginsWith /upload\" \"id:10003,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=OWASP_CRS;ARGS:file\"\n",
        ] {
            assert!(t.contains(line), "{line:?} missing from:\n{t}");
        }
        // Path rules come before the CRS, the others after it.
        let crs_at = at(&t, "Include /crs/rules/REQUEST-901");
        assert!(at(&t, "@beginsWith /upload") < crs_at);
        assert!(at(&t, "SecRuleRemoveByTag \"attack-sqli\"") > crs_at);
    }

    #[test]
    fn values_that_could_break_out_of_the_text_are_refused() {
        let refused = |f: &dyn Fn(&mut Settings)| {
            let mut s = settings();
            f(&mut s);
            plan(&s, &crs()).unwrap_err()
        };
        let path = |p: &str| {
            let p = p.to_string();
            move |s: &mut Settings| {
                s.exclusions = vec![Exclusion {
                    ids: vec![1],
                    path: Some(p.clone()),
                    ..Exclusion::default()
                }];
            }
        };
        for bad in [
            "/a\" \"id:1,phase:1,deny",
            "/a b",
            "/a\\",
            "/a'",
            "/%7b",
            "/a\n",
            "relative/",
            "/x%{tx.foo}",
        ] {
            let e = refused(&path(bad));
            assert!(e.contains("exclusion path"), "{bad:?}: {e}");
        }
        let param = |p: &'static str| {
            move |s: &mut Settings| {
                s.exclusions = vec![Exclusion {
                    ids: vec![942100],
                    params: vec![p.into()],
                    ..Exclusion::default()
                }];
            }
        };
        for bad in ["a,deny", "a;ARGS", "a\"", "a b", "a'", "a:b", "a|b", ""] {
            assert!(refused(&param(bad)).contains("params"), "{bad:?}");
        }
        let e = refused(&|s| {
            s.exclusions = vec![Exclusion {
                tags: vec!["x\" \"!ARGS".into()],
                ..Exclusion::default()
            }];
        });
        assert!(e.contains("tags"), "{e}");
        let e = refused(&|s| s.allowed_methods = Some(vec!["GET'\"".into()]));
        assert!(e.contains("allowed_methods"), "{e}");
        let e = refused(&|s| s.allowed_methods = Some(vec![]));
        assert!(e.contains("allowed_methods"), "{e}");
        let e = refused(&|s| s.allowed_content_types = Some(vec!["text/plain|".into()]));
        assert!(e.contains("allowed_content_types"), "{e}");
        let e = refused(&|s| s.allowed_content_types = Some(vec!["json".into()]));
        assert!(e.contains("media type"), "{e}");
        assert!(refused(&|s| s.paranoia_level = 5).contains("paranoia_level"));
        assert!(refused(&|s| s.inbound_threshold = 0).contains("threshold"));
        assert!(refused(&|s| s.exclusions = vec![Exclusion::default()]).contains("needs"));
        // Fine values go in verbatim.
        let mut s = settings();
        path("/api/v1/notes;x=(1)@a,b")(&mut s);
        assert!(text(&s).contains("\"@beginsWith /api/v1/notes;x=(1)@a,b\""));
    }

    #[test]
    fn an_operator_setup_file_replaces_the_generated_setup() {
        let mut s = settings();
        s.crs_setup = Some("/etc/modsecurity/crs/crs-setup.conf".into());
        let t = text(&s);
        assert!(t.contains("# crs_setup\nInclude /etc/modsecurity/crs/crs-setup.conf\n"));
        assert!(!t.contains("tx.crs_setup_version=334"));
        // Our tuning still follows it, so the plugin's settings win.
        assert!(at(&t, "crs-setup.conf") < at(&t, "setvar:tx.paranoia_level=1"));
    }

    #[test]
    fn the_crs_version_comes_from_its_initialization_file() {
        assert_eq!(version_of("    ver:'OWASP_CRS/3.3.4',\\"), Some(334));
        assert_eq!(version_of("ver:'OWASP_CRS/4.0.0'"), Some(400));
        assert_eq!(version_of("no version"), None);
        assert_eq!(
            version_of("# Producer: OWASP_CRS/3.1.0.\nSecComponentSignature \"OWASP_CRS/3.3.4\""),
            Some(334)
        );
    }

    #[test]
    fn the_debian_crs_is_found_without_ip_reputation_and_dos() {
        let dir = Path::new("/usr/share/modsecurity-crs");
        assert!(
            dir.exists(),
            "{} is absent: apt install modsecurity-crs",
            dir.display()
        );
        let crs = Crs::discover(dir).unwrap();
        let names: Vec<String> = crs.files.iter().map(|p| file_name(p)).collect();
        assert_eq!(
            names.first().map(String::as_str),
            Some("REQUEST-901-INITIALIZATION.conf")
        );
        assert!(names.iter().any(|n| n.starts_with("REQUEST-942-")));
        assert!(names.iter().any(|n| n.starts_with("RESPONSE-980-")));
        assert!(!names
            .iter()
            .any(|n| n.starts_with("REQUEST-910-") || n.starts_with("REQUEST-912-")));
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(crs.setup_version, 334);
        let e = Crs::discover(Path::new("/nonexistent-crs")).unwrap_err();
        assert!(e.starts_with("crs_dir /nonexistent-crs: "), "{e}");
        let e = Crs::discover(Path::new("/usr")).unwrap_err();
        assert!(e.contains("no OWASP CRS"), "{e}");
    }

    #[test]
    fn operator_rules_may_not_use_persistent_collections() {
        assert!(check_rules_text(
            "SecRule ARGS \"@rx x\" \"id:1,phase:2,pass,setvar:tx.score=+5\"\n# setvar:ip.x=1\n"
        )
        .is_ok());
        for bad in [
            "SecAction \"id:1,phase:1,pass,setvar:ip.hits=+1\"",
            "SecAction \"id:1,phase:1,pass,setvar:'IP.hits=+1'\"",
            "SecAction \"id:1,phase:1,pass,expirevar:global.x=10\"",
            "SecAction \"id:1,phase:1,pass,setvar:!session.x\"",
            "SecAction \"id:1,phase:1,pass,initcol:ip=%{remote_addr}\"",
            "SecAction \"id:1,phase:1,pass,setsid:%{request_cookies.sid}\"",
        ] {
            let e = check_rules_text(bad).unwrap_err();
            assert!(e.starts_with("line 1: "), "{bad}: {e}");
        }
    }
}

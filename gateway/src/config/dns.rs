//! `[dns]`: how endpoint names (`addr = "api.partner.example:443"`) are resolved, and the
//! syntax check of such names.

use serde::Deserialize;
use std::ops::Range;
use toml::Spanned;

/// `[dns]`: the resolver of endpoint names. Applies at once on reload.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers, `IP` or `IP:PORT` (53 by default), asked in order; empty: the system's
    /// (`/etc/resolv.conf`, and `/etc/hosts` first).
    pub servers: Vec<Spanned<String>>,
    /// An answer is used again for its TTL, but never less than this …
    pub min_ttl_seconds: Spanned<u64>,
    /// … and never more than this before the name is asked again.
    pub max_ttl_seconds: Spanned<u64>,
    /// Per query attempt (a query is tried twice per server before it counts as failed).
    pub timeout_ms: Spanned<u64>,
    /// Ask for AAAA records too (IPv6 endpoints), not only A.
    pub ipv6: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            min_ttl_seconds: Spanned::new(0..0, 5),
            max_ttl_seconds: Spanned::new(0..0, 300),
            timeout_ms: Spanned::new(0..0, 2000),
            ipv6: true,
        }
    }
}

impl DnsConfig {
    pub fn validate(&self, report: &mut dyn FnMut(Option<Range<usize>>, String)) {
        for server in &self.servers {
            if let Err(e) = parse_server(server.get_ref()) {
                report(Some(server.span()), e);
            }
        }
        let (min, max) = (&self.min_ttl_seconds, &self.max_ttl_seconds);
        if *min.get_ref() == 0 {
            report(
                Some(min.span()),
                "dns.min_ttl_seconds must be at least 1".into(),
            );
        }
        if max.get_ref() < min.get_ref() {
            report(
                Some(max.span()),
                "dns.max_ttl_seconds must not be below dns.min_ttl_seconds".into(),
            );
        }
        if !(1..=60_000).contains(self.timeout_ms.get_ref()) {
            report(
                Some(self.timeout_ms.span()),
                "dns.timeout_ms must be from 1 to 60000".into(),
            );
        }
    }
}

/// A name server: `IP` (port 53) or `IP:PORT` (`[V6]:PORT`).
pub fn parse_server(text: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Ok(addr);
    }
    text.parse::<std::net::IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, 53))
        .map_err(|_| format!("bad dns server {text:?} (expected IP or IP:PORT)"))
}

/// What an endpoint's `addr` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointAddr {
    Ip(std::net::SocketAddr),
    /// A DNS name (lower case, without a trailing dot) and the port.
    Name(String, u16),
}

/// Parses `IP:PORT`, `[V6]:PORT` or `NAME:PORT`, where NAME is a host name: dot-separated
/// labels of letters, digits and inner hyphens, 1–63 characters each, 253 in all, the last
/// not all digits (so that a mistyped address is not taken for a name).
pub fn parse_endpoint_addr(text: &str) -> Result<EndpointAddr, String> {
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Ok(EndpointAddr::Ip(addr));
    }
    let (host, port) = text
        .rsplit_once(':')
        .ok_or("no port (expected IP:PORT or NAME:PORT)")?;
    if host.contains(':') || host.starts_with('[') {
        return Err("not an IP:PORT (an IPv6 address goes in brackets: [::1]:80)".into());
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("bad port {port:?} (1 to 65535)"))?;
    let name = host.strip_suffix('.').unwrap_or(host);
    check_host_name(name)?;
    Ok(EndpointAddr::Name(name.to_ascii_lowercase(), port))
}

fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("no host name before the port".into());
    }
    if name.len() > 253 {
        return Err("the name is longer than 253 characters".into());
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if label.is_empty() {
            return Err(format!("empty label in the name {name:?}"));
        }
        if label.len() > 63 {
            return Err(format!("the label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "{c:?} in the name {name:?} (letters, digits, '-' and '.' only)"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("the label {label:?} starts or ends with a hyphen"));
        }
    }
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(format!(
            "{name:?} is neither an IP address nor a host name (its last label is all digits)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names_parse() {
        assert!(matches!(
            parse_endpoint_addr("10.0.0.1:80"),
            Ok(EndpointAddr::Ip(_))
        ));
        assert!(matches!(
            parse_endpoint_addr("[::1]:443"),
            Ok(EndpointAddr::Ip(_))
        ));
        assert_eq!(
            parse_endpoint_addr("API.Partner.example.:443"),
            Ok(EndpointAddr::Name("api.partner.example".into(), 443))
        );
        assert_eq!(
            parse_endpoint_addr("localhost:8080"),
            Ok(EndpointAddr::Name("localhost".into(), 8080))
        );
        for bad in [
            "api..example:443",
            "api.example",
            "api.example:0",
            "api.example:99999",
            "-api.example:80",
            "api-.example:80",
            "api_x.example:80",
            "10.0.0.300:80",
            "::1:80",
            ":80",
            "a b:80",
        ] {
            assert!(parse_endpoint_addr(bad).is_err(), "{bad} accepted");
        }
        let long = format!("{}.example:80", "a".repeat(64));
        assert!(parse_endpoint_addr(&long).is_err());
    }

    #[test]
    fn servers_take_a_default_port() {
        assert_eq!(parse_server("127.0.0.1").unwrap().port(), 53);
        assert_eq!(parse_server("127.0.0.1:5353").unwrap().port(), 5353);
        assert_eq!(parse_server("[::1]:5353").unwrap().port(), 5353);
        assert!(parse_server("dns.example").is_err());
    }
}

//! `type = "ip-restriction"`: allow and deny lists of networks (IPv4 and IPv6) for the
//! client address (after PROXY protocol and trusted proxies). Deny wins; with an allow list,
//! anything not on it is refused.

use crate::key::parse_cidr;
use crate::{order, parse_config, Ctx, Plugin, Reply};
use async_trait::async_trait;
use pingora_http::RequestHeader;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

pub struct IpRestriction {
    name: String,
    allow: Vec<ipnet::IpNet>,
    deny: Vec<ipnet::IpNet>,
}

impl IpRestriction {
    pub fn build(name: &str, table: toml::Table) -> Result<Arc<dyn Plugin>, String> {
        let config: Config = parse_config(name, table)?;
        let parse = |list: &[String]| {
            list.iter()
                .map(|c| parse_cidr(c).map_err(|e| format!("plugin {name:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        let (allow, deny) = (parse(&config.allow)?, parse(&config.deny)?);
        if allow.is_empty() && deny.is_empty() {
            return Err(format!("plugin {name:?} needs `allow` or `deny`"));
        }
        Ok(Arc::new(IpRestriction {
            name: name.into(),
            allow,
            deny,
        }))
    }

    pub fn permits(&self, ip: std::net::IpAddr) -> bool {
        // An IPv4 client seen as IPv4-mapped IPv6 is matched as IPv4.
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

#[async_trait]
impl Plugin for IpRestriction {
    fn name(&self) -> &str {
        &self.name
    }

    fn order(&self) -> u16 {
        order::IP_RESTRICTION
    }

    fn declare_metrics(&self) {
        crate::metrics::declare_refusals(&self.name, &[403]);
    }

    async fn on_request(&self, _req: &RequestHeader, cx: &mut Ctx<'_>) -> Result<(), Reply> {
        match cx.client_ip.parse::<std::net::IpAddr>() {
            Ok(ip) if self.permits(ip) => Ok(()),
            _ => Err(Reply::json(
                403,
                "Forbidden",
                "your address may not call this route",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;

    #[test]
    fn deny_wins_and_ipv6_works() {
        let mut t = toml::Table::new();
        t.insert(
            "allow".into(),
            toml::Value::Array(vec!["10.0.0.0/8".into(), "2001:db8::/32".into()]),
        );
        t.insert(
            "deny".into(),
            toml::Value::Array(vec!["10.9.0.0/16".into()]),
        );
        let p = IpRestriction::build("ip", t).unwrap();
        let p = (p.as_ref() as &dyn std::any::Any)
            .downcast_ref::<IpRestriction>()
            .unwrap();
        let ip = |s: &str| s.parse().unwrap();
        assert!(p.permits(ip("10.1.2.3")));
        assert!(!p.permits(ip("10.9.2.3")));
        assert!(!p.permits(ip("192.168.1.1")));
        assert!(p.permits(ip("2001:db8::7")));
        assert!(!p.permits(ip("2001:db9::7")));
        assert!(p.permits(ip("::ffff:10.1.2.3")));
    }

    async fn status(table: &str, ip: &str) -> Option<u16> {
        let p = testing::plugin(&format!("type = \"ip-restriction\"\n{table}"));
        let req = testing::request("GET", "/", &[]);
        testing::run(&p, &req, ip)
            .await
            .0
            .err()
            .map(|reply| reply.status)
    }

    #[tokio::test]
    async fn an_allow_list_admits_only_its_networks_and_deny_wins() {
        let table = "allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]\ndeny = [\"10.9.0.0/16\", \"2001:db8:bad::/48\"]";
        for (ip, want) in [
            ("10.1.2.3", None),
            ("10.9.2.3", Some(403)),
            ("192.0.2.1", Some(403)),
            ("2001:db8::7", None),
            ("2001:db8:bad::1", Some(403)),
            ("2001:db9::7", Some(403)),
            ("::ffff:10.1.2.3", None),
            ("::ffff:10.9.2.3", Some(403)),
        ] {
            assert_eq!(status(table, ip).await, want, "{ip}");
        }
    }

    #[tokio::test]
    async fn a_deny_list_alone_admits_everyone_else() {
        let table = "deny = [\"192.0.2.0/24\", \"2001:db8::1\"]";
        for (ip, want) in [
            ("192.0.2.77", Some(403)),
            ("198.51.100.1", None),
            ("2001:db8::1", Some(403)),
            ("2001:db8::2", None),
        ] {
            assert_eq!(status(table, ip).await, want, "{ip}");
        }
    }

    #[tokio::test]
    async fn the_refusal_is_a_json_403_and_an_unparsable_address_is_refused() {
        let p = testing::plugin("type = \"ip-restriction\"\ndeny = [\"192.0.2.0/24\"]");
        let req = testing::request("GET", "/", &[]);
        let reply = testing::run(&p, &req, "192.0.2.1").await.0.unwrap_err();
        assert_eq!(reply.status, 403);
        assert_eq!(testing::body(&reply)["error"], "Forbidden");
        let (result, _) = testing::run(&p, &req, "unknown").await;
        assert_eq!(result.unwrap_err().status, 403);
    }

    #[test]
    fn empty_lists_and_bad_networks_are_refused() {
        assert!(testing::refusal("type = \"ip-restriction\"").contains("needs `allow` or `deny`"));
        let error = testing::refusal("type = \"ip-restriction\"\nallow = [\"10.0.0.0/99\"]");
        assert!(error.starts_with("plugin \"p\""), "{error}");
        assert!(error.contains("10.0.0.0/99"), "{error}");
    }
}

//! `type = "ip-restriction"`: allow and deny lists of networks (IPv4 and IPv6) for the
//! client address (after PROXY protocol and trusted proxies). Deny wins; with an allow list,
//! anything not on it is refused.

use crate::key::parse_cidr;
use crate::{order, parse_config, Plugin, Reply, RequestState};
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

    async fn on_request(
        &self,
        _req: &RequestHeader,
        state: &mut RequestState,
        _index: usize,
    ) -> Result<(), Reply> {
        match state.client_ip.parse::<std::net::IpAddr>() {
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
}

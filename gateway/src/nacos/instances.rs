//! The instance list answer of `/nacos/v1/ns/instance/list`, turned into endpoints. Weight,
//! `enabled` and `healthy` decide the traffic share (0 for none); metadata becomes labels.

use crate::upstream::EndpointSpec;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

#[derive(Deserialize)]
struct InstanceList {
    /// Required: an answer without it is not an instance list (garbled, or an error page).
    hosts: Vec<Instance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Instance {
    ip: String,
    port: u16,
    #[serde(default = "one")]
    weight: f64,
    #[serde(default = "yes")]
    healthy: bool,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    cluster_name: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}

/// Parses an answer. Endpoints are sorted by address so equal lists compare equal.
pub fn parse(body: &str) -> Result<Vec<EndpointSpec>, String> {
    let list: InstanceList =
        serde_json::from_str(body).map_err(|e| format!("instance list not understood: {e}"))?;
    let mut out = Vec::with_capacity(list.hosts.len());
    for host in list.hosts {
        let ip: IpAddr = host
            .ip
            .parse()
            .map_err(|_| format!("instance ip {:?} is not an IP address", host.ip))?;
        let takes_traffic = host.healthy && host.enabled.unwrap_or(true) && host.weight > 0.0;
        // Nacos weights are decimals (0.5, 1, 2.5); keep two places as an integer weight.
        let weight = if takes_traffic {
            ((host.weight * 100.0).round() as u32).max(1)
        } else {
            0
        };
        let mut labels = host.metadata;
        if let Some(cluster) = host.cluster_name {
            labels.entry("cluster".into()).or_insert(cluster);
        }
        out.push(EndpointSpec {
            addr: SocketAddr::new(ip, host.port),
            weight,
            labels,
        });
    }
    out.sort_by_key(|e| e.addr);
    out.dedup_by_key(|e| e.addr);
    reduce_weights(&mut out);
    Ok(out)
}

/// Divides weights by their common divisor: 100/100/100 becomes 1/1/1, which keeps the
/// round-robin tables small.
fn reduce_weights(endpoints: &mut [EndpointSpec]) {
    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let divisor = endpoints
        .iter()
        .map(|e| e.weight)
        .filter(|w| *w > 0)
        .fold(0, gcd);
    if divisor > 1 {
        for e in endpoints.iter_mut() {
            e.weight /= divisor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_flags_and_labels() {
        let body = r#"{"name":"DEFAULT_GROUP@@chat","hosts":[
            {"ip":"10.0.0.2","port":8080,"weight":1.0,"healthy":true,"enabled":true,"clusterName":"a","metadata":{"stage":"blue"}},
            {"ip":"10.0.0.1","port":8080,"weight":2.5,"healthy":true,"enabled":true,"clusterName":"a","metadata":{}},
            {"ip":"10.0.0.3","port":8080,"weight":1.0,"healthy":false,"enabled":true,"metadata":{}},
            {"ip":"10.0.0.4","port":8080,"weight":1.0,"healthy":true,"enabled":false,"metadata":{}},
            {"ip":"10.0.0.5","port":8080,"weight":0.0,"healthy":true,"enabled":true,"metadata":{}},
            {"ip":"::1","port":9000,"weight":1.0,"healthy":true,"enabled":true,"metadata":{}}
        ]}"#;
        let list = parse(body).expect("parses");
        let weights: Vec<(String, u32)> = list
            .iter()
            .map(|e| (e.addr.to_string(), e.weight))
            .collect();
        assert_eq!(
            weights,
            vec![
                ("10.0.0.1:8080".into(), 5),
                ("10.0.0.2:8080".into(), 2),
                ("10.0.0.3:8080".into(), 0),
                ("10.0.0.4:8080".into(), 0),
                ("10.0.0.5:8080".into(), 0),
                ("[::1]:9000".into(), 2),
            ]
        );
        assert_eq!(
            list[1].labels.get("stage").map(String::as_str),
            Some("blue")
        );
        assert_eq!(list[1].labels.get("cluster").map(String::as_str), Some("a"));
    }

    #[test]
    fn garbled_answers_are_errors_not_empty_lists() {
        assert!(parse("").is_err());
        assert!(parse("<html>502</html>").is_err());
        assert!(parse(r#"{"name":"x"}"#).is_err());
        assert!(parse(r#"{"hosts":[{"ip":"not-an-ip","port":1}]}"#).is_err());
        assert_eq!(parse(r#"{"hosts":[]}"#).expect("empty is valid"), vec![]);
    }
}

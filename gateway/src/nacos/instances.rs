//! Nacos instances turned into endpoints, whatever the API that listed them: the v1 answer
//! of `/nacos/v1/ns/instance/list` (`{"hosts":[…]}`), the v3 client API (a bare array in
//! `data`) and a gRPC ServiceInfo (its `hosts`) all go through [`endpoints`]. Weight,
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

/// One instance as every Nacos API spells it. Optional fields may be absent or `null`
/// (rnacos writes `"metadata":null`, `"clusterName":null`).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    ip: String,
    port: u16,
    #[serde(default)]
    weight: Option<f64>,
    #[serde(default)]
    healthy: Option<bool>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    cluster_name: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
}

/// The cluster of an instance that names none.
const DEFAULT_CLUSTER: &str = "DEFAULT";

/// Parses a v1 answer. Endpoints are sorted by address so equal lists compare equal.
pub fn parse(body: &str) -> Result<Vec<EndpointSpec>, String> {
    let list: InstanceList =
        serde_json::from_str(body).map_err(|e| format!("instance list not understood: {e}"))?;
    endpoints(list.hosts, "")
}

/// Instances to endpoints, keeping those of `clusters` (sorted, comma-joined; empty for
/// all). Sorted by address, so equal lists compare equal.
pub fn endpoints(hosts: Vec<Instance>, clusters: &str) -> Result<Vec<EndpointSpec>, String> {
    let wanted: Vec<&str> = clusters.split(',').filter(|c| !c.is_empty()).collect();
    let mut out = Vec::with_capacity(hosts.len());
    for host in hosts {
        if !wanted.is_empty() {
            let cluster = host.cluster_name.as_deref().unwrap_or(DEFAULT_CLUSTER);
            if !wanted.contains(&cluster) {
                continue;
            }
        }
        let ip: IpAddr = host
            .ip
            .parse()
            .map_err(|_| format!("instance ip {:?} is not an IP address", host.ip))?;
        let weight = host.weight.unwrap_or(1.0);
        let takes_traffic =
            host.healthy.unwrap_or(true) && host.enabled.unwrap_or(true) && weight > 0.0;
        // Nacos weights are decimals (0.5, 1, 2.5); keep two places as an integer weight.
        let weight = if takes_traffic {
            ((weight * 100.0).round() as u32).max(1)
        } else {
            0
        };
        let mut labels = host.metadata.unwrap_or_default();
        if let Some(cluster) = host.cluster_name {
            labels.entry("cluster".into()).or_insert(cluster);
        }
        out.push(EndpointSpec {
            addr: SocketAddr::new(ip, host.port),
            weight,
            labels,
            name: None,
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

    fn hosts(json: &str) -> Vec<Instance> {
        serde_json::from_str(json).expect("instances")
    }

    #[test]
    fn nulls_and_missing_fields_take_the_defaults() {
        // rnacos over gRPC: metadata and clusterName may be null.
        let list = endpoints(
            hosts(
                r#"[{"ip":"10.0.0.1","port":80,"weight":1.0,"healthy":true,"enabled":true,
                     "ephemeral":true,"clusterName":null,"serviceName":"DEFAULT_GROUP@@chat","metadata":null},
                    {"ip":"10.0.0.2","port":80}]"#,
            ),
            "",
        )
        .expect("parses");
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|e| e.weight == 1 && e.labels.is_empty()));
    }

    #[test]
    fn clusters_filter_on_our_side() {
        let all = r#"[{"ip":"10.0.0.1","port":80,"clusterName":"a"},
                      {"ip":"10.0.0.2","port":80,"clusterName":"b"},
                      {"ip":"10.0.0.3","port":80}]"#;
        let addrs = |clusters: &str| -> Vec<String> {
            endpoints(hosts(all), clusters)
                .expect("parses")
                .iter()
                .map(|e| e.addr.to_string())
                .collect()
        };
        assert_eq!(addrs("").len(), 3);
        assert_eq!(addrs("a"), vec!["10.0.0.1:80"]);
        assert_eq!(addrs("DEFAULT,b"), vec!["10.0.0.2:80", "10.0.0.3:80"]);
    }
}

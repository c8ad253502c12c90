//! A Service's endpoints from what the watches know: its EndpointSlices (addresses, port,
//! conditions) joined with its pods' labels.
//!
//! The conditions, as Kubernetes means them:
//! - `terminating` (the pod is being deleted): the endpoint is left out. It takes no new
//!   request, and its WebSocket tunnels are drained like those of any endpoint that left
//!   its service (the route's `on_route_change` over its `drain_window`), while the pod
//!   still serves them through its grace period.
//! - not `ready` (failing its readiness probe, or starting): kept with weight 0 — no new
//!   requests, but a readiness flap does not cut the tunnels it carries.
//! - `ready` (unset counts as ready, as the API says): weight 1.
//!
//! Labels are the pod's (its `targetRef`), so `split`/`subset` by `stage = "blue"` select
//! pods as they select Nacos instances, plus `kubernetes.io/service-name` (the Service, as
//! on EndpointSlices), so a service bound to several Services can weigh them in a `split`.
//! An address without a pod (a hand-made slice) has that label only.

use crate::config::PortRef;
use crate::upstream::EndpointSpec;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

/// The labels of the pods of a namespace, by pod name.
pub type PodLabels = HashMap<String, BTreeMap<String, String>>;

/// The label every endpoint carries: its Service's name.
pub const SERVICE_LABEL: &str = "kubernetes.io/service-name";

/// The endpoints of `port` in `slices` (all of the Service `service`). Sorted by address, so
/// the same state always gives the same list and an unchanged list is recognised as such.
pub fn endpoints<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    service: &str,
    port: Option<&PortRef>,
    pods: &PodLabels,
) -> Result<Vec<EndpointSpec>, String> {
    let mut out: BTreeMap<SocketAddr, EndpointSpec> = BTreeMap::new();
    for slice in slices {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue; // FQDN slices name hosts, not pods
        }
        let Some(number) = port_number(slice, port)? else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let conditions = endpoint.conditions.as_ref();
            if conditions.and_then(|c| c.terminating) == Some(true) {
                continue;
            }
            let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
            let mut labels = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| pods.get(r.name.as_deref()?))
                .cloned()
                .unwrap_or_default();
            labels.insert(SERVICE_LABEL.to_string(), service.to_string());
            for address in &endpoint.addresses {
                let Ok(ip) = address.parse::<IpAddr>() else {
                    continue;
                };
                let addr = SocketAddr::new(ip, number);
                out.insert(
                    addr,
                    EndpointSpec {
                        addr,
                        weight: u32::from(ready),
                        labels: labels.clone(),
                        name: None,
                    },
                );
            }
        }
    }
    Ok(out.into_values().collect())
}

/// The slice's number for `port`: by the Service port's name, by the pods' port number, or
/// the one port when none is named. `Ok(None)`: this slice does not carry the port (slices
/// of one Service may differ while a port is being added).
fn port_number(slice: &EndpointSlice, port: Option<&PortRef>) -> Result<Option<u16>, String> {
    let ports = slice.ports.as_deref().unwrap_or_default();
    let number = |p: &k8s_openapi::api::discovery::v1::EndpointPort| {
        p.port.and_then(|n| u16::try_from(n).ok())
    };
    Ok(match port {
        Some(PortRef::Name(name)) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(number),
        Some(PortRef::Number(n)) => ports
            .iter()
            .find(|p| number(p) == Some(*n))
            .and_then(number),
        None => match ports {
            [] => None,
            [one] => number(one),
            _ => {
                return Err(format!(
                    "the Service has {} ports ({}); name one with `port`",
                    ports.len(),
                    ports
                        .iter()
                        .map(|p| p.name.clone().unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(json: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json).unwrap()
    }

    fn chat_slice() -> EndpointSlice {
        slice(serde_json::json!({
            "metadata": {"name": "chat-abc", "labels": {"kubernetes.io/service-name": "chat"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
            "endpoints": [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "chat-1"}},
                {"addresses": ["10.0.0.1"],
                 "targetRef": {"kind": "Pod", "name": "chat-2"}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false, "serving": true, "terminating": true},
                 "targetRef": {"kind": "Pod", "name": "chat-3"}},
                {"addresses": ["10.0.0.4"], "conditions": {"ready": false},
                 "targetRef": {"kind": "Pod", "name": "chat-4"}}
            ]
        }))
    }

    fn pods() -> PodLabels {
        let mut pods = PodLabels::new();
        pods.insert("chat-1".into(), [("stage".into(), "blue".into())].into());
        pods.insert("chat-2".into(), [("stage".into(), "green".into())].into());
        pods
    }

    #[test]
    fn ready_pods_take_traffic_terminating_ones_leave_and_labels_come_from_the_pods() {
        let slices = [chat_slice()];
        let got = endpoints(
            &slices,
            "chat",
            Some(&PortRef::Name("http".into())),
            &pods(),
        )
        .unwrap();
        let summary: Vec<(String, u32, Option<&str>)> = got
            .iter()
            .map(|e| {
                (
                    e.addr.to_string(),
                    e.weight,
                    e.labels.get("stage").map(String::as_str),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("10.0.0.1:8080".to_string(), 1, Some("green")),
                ("10.0.0.2:8080".to_string(), 1, Some("blue")),
                ("10.0.0.4:8080".to_string(), 0, None),
            ]
        );
    }

    #[test]
    fn ports_are_found_by_name_by_number_or_alone() {
        let slices = [chat_slice()];
        let by_number = endpoints(&slices, "chat", Some(&PortRef::Number(9090)), &pods()).unwrap();
        assert_eq!(by_number[0].addr.port(), 9090);
        let unknown = endpoints(
            &slices,
            "chat",
            Some(&PortRef::Name("grpc".into())),
            &pods(),
        )
        .unwrap();
        assert!(unknown.is_empty());
        let ambiguous = endpoints(&slices, "chat", None, &pods()).unwrap_err();
        assert!(ambiguous.contains("http, metrics"), "{ambiguous}");
        let one = slice(serde_json::json!({
            "metadata": {"name": "one"}, "addressType": "IPv6",
            "ports": [{"port": 80}],
            "endpoints": [{"addresses": ["fd00::1"]}]
        }));
        let got = endpoints([&one], "one", None, &PodLabels::new()).unwrap();
        assert_eq!(got[0].addr.to_string(), "[fd00::1]:80");
        assert_eq!(got[0].labels[SERVICE_LABEL], "one");
    }

    #[test]
    fn slices_of_one_service_are_merged_and_fqdn_slices_skipped() {
        let other = slice(serde_json::json!({
            "metadata": {"name": "chat-def"}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["10.0.1.9"]}]
        }));
        let fqdn = slice(serde_json::json!({
            "metadata": {"name": "chat-fqdn"}, "addressType": "FQDN",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": ["chat.example"]}]
        }));
        let slices = [chat_slice(), other, fqdn];
        let got = endpoints(
            &slices,
            "chat",
            Some(&PortRef::Name("http".into())),
            &pods(),
        )
        .unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].addr.to_string(), "10.0.1.9:8080");
    }
}

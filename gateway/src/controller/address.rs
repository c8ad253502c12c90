//! Where clients reach the gateways, published on the objects they route: each translated
//! Ingress's `status.loadBalancer.ingress` (the ADDRESS column of `kubectl get ingress`, and
//! what external-dns reads to make DNS records) and each Tidegate Gateway's
//! `status.addresses`. Taken, as ingress-nginx does, from the gateways' own Service
//! (`--publish-service`: its load balancer's addresses, else its external IPs) or given
//! (`--publish-status-address`).

use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::Store;
use serde_json::{json, Value};

/// Where the addresses come from.
#[derive(Debug, Clone, Default)]
pub enum Publish {
    /// Not published: the objects' address status is left alone.
    #[default]
    Nothing,
    /// The Service (`namespace`, `name`) in front of the gateways.
    Service(String, String),
    /// Fixed addresses (IPs or host names), e.g. of a cloud load balancer outside the cluster.
    Fixed(Vec<String>),
}

impl Publish {
    /// From the two flags; a service is `NAMESPACE/NAME`.
    pub fn parse(service: Option<&str>, fixed: Option<&str>) -> Result<Publish, String> {
        match (service, fixed) {
            (Some(_), Some(_)) => {
                Err("--publish-service and --publish-status-address exclude each other".into())
            }
            (Some(s), None) => match s.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                    Ok(Publish::Service(ns.into(), name.into()))
                }
                _ => Err(format!("--publish-service {s:?}: expected NAMESPACE/NAME")),
            },
            (None, Some(list)) => {
                let list: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .map(String::from)
                    .collect();
                if list.is_empty() {
                    return Err("--publish-status-address: no address".into());
                }
                Ok(Publish::Fixed(list))
            }
            (None, None) => Ok(Publish::Nothing),
        }
    }

    /// The addresses now; None when nothing is published.
    pub fn addresses(&self, services: &Store<Service>) -> Option<Vec<String>> {
        match self {
            Publish::Nothing => None,
            Publish::Fixed(list) => Some(list.clone()),
            Publish::Service(namespace, name) => Some(
                services
                    .state()
                    .iter()
                    .find(|s| {
                        s.metadata.namespace.as_deref() == Some(namespace)
                            && s.metadata.name.as_deref() == Some(name)
                    })
                    .map(|s| of_service(s))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// A Service's load balancer addresses (a pending load balancer has none yet), else its
/// external IPs.
fn of_service(service: &Service) -> Vec<String> {
    let balancer: Vec<String> = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone().or_else(|| i.hostname.clone()))
        .collect();
    if !balancer.is_empty() {
        return balancer;
    }
    service
        .spec
        .as_ref()
        .and_then(|s| s.external_ips.clone())
        .unwrap_or_default()
}

fn is_ip(address: &str) -> bool {
    address.parse::<std::net::IpAddr>().is_ok()
}

/// An Ingress's `status` for these addresses.
pub fn ingress_status(addresses: &[String]) -> Value {
    let ingress: Vec<Value> = addresses
        .iter()
        .map(|a| {
            if is_ip(a) {
                json!({"ip": a})
            } else {
                json!({"hostname": a})
            }
        })
        .collect();
    if ingress.is_empty() {
        return json!({"loadBalancer": {}});
    }
    json!({"loadBalancer": {"ingress": ingress}})
}

/// A Gateway's `status.addresses` for these addresses.
pub fn gateway_addresses(addresses: &[String]) -> Value {
    addresses
        .iter()
        .map(|a| {
            let kind = if is_ip(a) { "IPAddress" } else { "Hostname" };
            json!({"type": kind, "value": a})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_are_read_and_checked() {
        assert!(matches!(Publish::parse(None, None), Ok(Publish::Nothing)));
        assert!(matches!(
            Publish::parse(Some("gw/tidegate"), None),
            Ok(Publish::Service(ns, n)) if ns == "gw" && n == "tidegate"
        ));
        assert!(matches!(
            Publish::parse(None, Some("203.0.113.7, lb.example.com")),
            Ok(Publish::Fixed(l)) if l == ["203.0.113.7", "lb.example.com"]
        ));
        for bad in ["tidegate", "/x", "a/", "a/b/c"] {
            assert!(Publish::parse(Some(bad), None).is_err(), "{bad}");
        }
        assert!(Publish::parse(Some("a/b"), Some("1.2.3.4")).is_err());
        assert!(Publish::parse(None, Some(" , ")).is_err());
    }

    #[test]
    fn addresses_become_ips_or_host_names() {
        let list = [
            "203.0.113.7".to_string(),
            "lb.example.com".into(),
            "2001:db8::1".into(),
        ];
        assert_eq!(
            ingress_status(&list),
            json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}, {"ip": "2001:db8::1"}]}})
        );
        assert_eq!(ingress_status(&[]), json!({"loadBalancer": {}}));
        assert_eq!(
            gateway_addresses(&list[..2]),
            json!([{"type": "IPAddress", "value": "203.0.113.7"}, {"type": "Hostname", "value": "lb.example.com"}])
        );
    }

    #[test]
    fn a_service_gives_its_load_balancer_else_its_external_ips() {
        let service = |v: Value| -> Service { serde_json::from_value(v).unwrap() };
        let lb = service(json!({"metadata": {"name": "t"},
            "spec": {"externalIPs": ["198.51.100.1"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "x.elb.example.com"}]}}}));
        assert_eq!(of_service(&lb), ["203.0.113.7", "x.elb.example.com"]);
        let pending = service(json!({"metadata": {"name": "t"},
            "spec": {"externalIPs": ["198.51.100.1"]}, "status": {"loadBalancer": {}}}));
        assert_eq!(of_service(&pending), ["198.51.100.1"]);
        assert!(of_service(&service(json!({"metadata": {"name": "t"}}))).is_empty());
    }
}

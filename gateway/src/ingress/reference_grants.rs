//! ReferenceGrants (Gateway API): a namespace's consent to be referenced from another —
//! an HTTPRoute's backendRef to a Service of another namespace, a Gateway's certificateRef
//! to a Secret of another namespace. Without one such a reference is refused
//! (`RefNotPermitted`), as the API requires; the grant lives in the namespace referred to.

use gateway_api::referencegrants::ReferenceGrantSpec;

const GROUP: &str = "gateway.networking.k8s.io";

/// A ReferenceGrant: its namespace and spec (the same in v1beta1 and v1).
#[derive(Debug, Clone)]
pub struct Grant {
    pub namespace: String,
    pub spec: ReferenceGrantSpec,
}

/// Whether a `from_kind` (of the Gateway API group) in `from_namespace` may refer to the core
/// object `to_kind` `to_namespace/to_name`. A reference within one namespace needs no grant.
pub fn permits(
    grants: &[Grant],
    from_kind: &str,
    from_namespace: &str,
    to_kind: &str,
    to_namespace: &str,
    to_name: &str,
) -> bool {
    if from_namespace == to_namespace {
        return true;
    }
    grants
        .iter()
        .filter(|g| g.namespace == to_namespace)
        .any(|g| {
            g.spec
                .from
                .iter()
                .any(|f| f.group == GROUP && f.kind == from_kind && f.namespace == from_namespace)
                && g.spec.to.iter().any(|t| {
                    t.group.is_empty()
                        && t.kind == to_kind
                        && t.name.as_deref().is_none_or(|n| n == to_name)
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(namespace: &str, spec: serde_json::Value) -> Grant {
        Grant {
            namespace: namespace.into(),
            spec: serde_json::from_value(spec).unwrap(),
        }
    }

    #[test]
    fn a_grant_in_the_namespace_referred_to_permits_what_it_names() {
        let grants = [grant(
            "billing",
            serde_json::json!({
                "from": [{"group": GROUP, "kind": "HTTPRoute", "namespace": "shop"}],
                "to": [{"group": "", "kind": "Service", "name": "invoices"}]}),
        )];
        assert!(permits(
            &grants,
            "HTTPRoute",
            "shop",
            "Service",
            "billing",
            "invoices"
        ));
        assert!(permits(
            &grants,
            "HTTPRoute",
            "billing",
            "Service",
            "billing",
            "x"
        ));
        for (kind, from, to_kind, to, name) in [
            ("HTTPRoute", "shop", "Service", "billing", "other"),
            ("GRPCRoute", "shop", "Service", "billing", "invoices"),
            ("HTTPRoute", "blog", "Service", "billing", "invoices"),
            ("HTTPRoute", "shop", "Secret", "billing", "invoices"),
            ("HTTPRoute", "shop", "Service", "shop2", "invoices"),
        ] {
            assert!(
                !permits(&grants, kind, from, to_kind, to, name),
                "{kind} {from} → {to_kind} {to}/{name}"
            );
        }
        // Without a name, every object of the kind.
        let any = [grant(
            "certs",
            serde_json::json!({
                "from": [{"group": GROUP, "kind": "Gateway", "namespace": "edge"}],
                "to": [{"group": "", "kind": "Secret"}]}),
        )];
        assert!(permits(
            &any,
            "Gateway",
            "edge",
            "Secret",
            "certs",
            "wildcard-tls"
        ));
    }
}

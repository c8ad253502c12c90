//! The Kubernetes objects an import reads: every YAML document of every file (a `List`'s
//! items too), typed with the Kubernetes API types (and the Gateway API's, from the
//! `gateway-api` crate); Ingresses, IngressClasses, Services, Secrets (not TLS ones: those
//! are mounted), GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes and ReferenceGrants matter, the rest is
//! skipped.

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

#[derive(Default)]
pub struct Objects {
    pub ingresses: Vec<Ingress>,
    pub classes: Vec<IngressClass>,
    pub services: Vec<Service>,
    /// Secrets other than TLS ones: the users of `auth-type: basic`.
    pub secrets: Vec<Secret>,
    pub gateway_classes: Vec<GatewayClass>,
    pub gateways: Vec<Gateway>,
    pub http_routes: Vec<HttpRoute>,
    pub grpc_routes: Vec<GrpcRoute>,
    pub reference_grants: Vec<super::reference_grants::Grant>,
    /// Objects of other kinds, as `Kind namespace/name`, for the report.
    pub others: Vec<String>,
}

/// Reads `(file name, text)` pairs. A document that is not YAML, or an Ingress that does not
/// fit the API's schema, is an error naming the file and the document.
pub fn read(files: &[(String, String)]) -> Result<Objects, String> {
    let mut objects = Objects::default();
    for (file, text) in files {
        let documents: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(text).map_err(|e| format!("{file}: {e}"))?;
        for (i, document) in documents.into_iter().enumerate() {
            let at = format!("{file}, document {}", i + 1);
            add(&mut objects, document, &at)?;
        }
    }
    Ok(objects)
}

fn add(objects: &mut Objects, document: serde_json::Value, at: &str) -> Result<(), String> {
    if document.is_null() {
        return Ok(()); // an empty document (`---` at the end)
    }
    let kind = document["kind"].as_str().unwrap_or_default().to_string();
    let api_version = document["apiVersion"].as_str().unwrap_or_default();
    let typed = |what: &str| format!("{at}: this {what} does not fit the Kubernetes API");
    match (kind.as_str(), api_version) {
        ("List", _) => {
            let items = document["items"].as_array().cloned().unwrap_or_default();
            for item in items {
                add(objects, item, at)?;
            }
        }
        ("Ingress", "networking.k8s.io/v1") => objects.ingresses.push(
            serde_json::from_value(document).map_err(|e| format!("{}: {e}", typed("Ingress")))?,
        ),
        ("Ingress", other) => {
            return Err(format!(
                "{at}: Ingress of {other}: only networking.k8s.io/v1 (Kubernetes ≥ 1.19) is read; convert older ones first"
            ))
        }
        ("IngressClass", "networking.k8s.io/v1") => objects.classes.push(
            serde_json::from_value(document)
                .map_err(|e| format!("{}: {e}", typed("IngressClass")))?,
        ),
        ("Secret", "v1") if document["type"].as_str() != Some("kubernetes.io/tls") => {
            objects.secrets.push(
                serde_json::from_value(document)
                    .map_err(|e| format!("{}: {e}", typed("Secret")))?,
            );
        }
        ("Service", "v1") => objects.services.push(
            serde_json::from_value(document).map_err(|e| format!("{}: {e}", typed("Service")))?,
        ),
        ("GatewayClass", "gateway.networking.k8s.io/v1") => objects.gateway_classes.push(
            serde_json::from_value(document)
                .map_err(|e| format!("{}: {e}", typed("GatewayClass")))?,
        ),
        ("Gateway", "gateway.networking.k8s.io/v1") => objects.gateways.push(
            serde_json::from_value(document).map_err(|e| format!("{}: {e}", typed("Gateway")))?,
        ),
        ("HTTPRoute", "gateway.networking.k8s.io/v1") => objects.http_routes.push(
            serde_json::from_value(document).map_err(|e| format!("{}: {e}", typed("HTTPRoute")))?,
        ),
        ("ReferenceGrant", "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1") => {
            let spec = serde_json::from_value(document["spec"].clone())
                .map_err(|e| format!("{}: {e}", typed("ReferenceGrant")))?;
            objects.reference_grants.push(super::reference_grants::Grant {
                namespace: document["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                spec,
            });
        }
        ("GRPCRoute", "gateway.networking.k8s.io/v1") => objects.grpc_routes.push(
            serde_json::from_value(document).map_err(|e| format!("{}: {e}", typed("GRPCRoute")))?,
        ),
        _ => {
            let meta = &document["metadata"];
            objects.others.push(format!(
                "{kind} {}/{}",
                meta["namespace"].as_str().unwrap_or("default"),
                meta["name"].as_str().unwrap_or("?")
            ));
        }
    }
    Ok(())
}

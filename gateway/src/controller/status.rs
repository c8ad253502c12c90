//! Gateway API status, written back by the leader after each translation: `Accepted` on
//! Tidegate's GatewayClasses; `Accepted` and `Programmed` on their Gateways (Programmed is
//! false, with the gateways' compile error, while a translation is refused); and on each
//! attached route, per Gateway, `Accepted` (a listener allows it) and `ResolvedRefs` (its
//! backendRefs are Services it may use). With an address to publish (`address.rs`), the
//! translated Ingresses' `status.loadBalancer` and the Gateways' `status.addresses` too. A
//! status that did not change is not written again, so a quiet cluster sees no writes.

use crate::ingress::{Report, GATEWAY_CONTROLLER_NAME};
use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::PostParams;
use kube::Api;
use serde_json::{json, Value};

/// A condition as the API writes it.
fn condition(
    kind: &str,
    ok: &Result<(), String>,
    good_reason: &str,
    generation: Option<i64>,
) -> Value {
    let (status, reason, message) = match ok {
        Ok(()) => ("True", good_reason.to_string(), String::new()),
        Err(why) => {
            let (reason, message) = why.split_once(": ").unwrap_or(("Invalid", why));
            ("False", reason.to_string(), message.to_string())
        }
    };
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "observedGeneration": generation.unwrap_or(0),
        "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
    })
}

/// Conditions compared without their times: only a real change is written.
fn same(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Value {
        let mut v = v.clone();
        strip_times(&mut v);
        v
    };
    strip(old) == strip(new)
}

fn strip_times(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.remove("lastTransitionTime");
            map.values_mut().for_each(strip_times);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// Replaces the status of `object` with `status` when it differs.
async fn put_status<K>(api: &Api<K>, mut object: K, status: Value) -> Result<(), String>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut whole = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    if same(&whole["status"], &status) {
        return Ok(());
    }
    whole["status"] = status;
    object = serde_json::from_value(whole).map_err(|e| e.to_string())?;
    let name = object.meta().name.clone().unwrap_or_default();
    api.replace_status(&name, &PostParams::default(), &object)
        .await
        .map(|_| ())
        .map_err(|e| format!("status of {name}: {e}"))
}

/// The objects the last translation saw.
pub struct Seen<'a> {
    pub ingresses: &'a [Ingress],
    pub classes: &'a [GatewayClass],
    pub gateways: &'a [Gateway],
    pub http_routes: &'a [HttpRoute],
    pub grpc_routes: &'a [GrpcRoute],
}

/// Writes every status the translation decided; `programmed`: whether it was written (Err:
/// why the gateways would refuse it); `addresses`: where the gateways are reached, when
/// published.
pub async fn write(
    client: &kube::Client,
    seen: Seen<'_>,
    report: &Report,
    programmed: &Result<(), String>,
    addresses: Option<&[String]>,
) {
    let mut failures = Vec::new();
    if let Some(addresses) = addresses {
        let status = super::address::ingress_status(addresses);
        for ingress in seen.ingresses {
            // Only the Ingresses of this controller's class.
            if !report
                .ingresses
                .contains(&crate::ingress::object_id(ingress))
            {
                continue;
            }
            let namespace = ingress.metadata.namespace.as_deref().unwrap_or("default");
            let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
            if let Err(e) = put_status(&api, ingress.clone(), status.clone()).await {
                failures.push(e);
            }
        }
    }
    for class in seen.classes.iter().filter(|c| {
        report
            .gateway_classes
            .iter()
            .any(|n| Some(n) == c.metadata.name.as_ref())
    }) {
        let status = json!({"conditions": [condition("Accepted", &Ok(()), "Accepted", class.metadata.generation)]});
        let api: Api<GatewayClass> = Api::all(client.clone());
        if let Err(e) = put_status(&api, class.clone(), status).await {
            failures.push(e);
        }
    }
    for gateway in seen.gateways {
        let key = (
            gateway
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into()),
            gateway.metadata.name.clone().unwrap_or_default(),
        );
        if !report.gateways.contains(&key) {
            continue;
        }
        let generation = gateway.metadata.generation;
        let mut status = json!({"conditions": [
            condition("Accepted", &Ok(()), "Accepted", generation),
            condition("Programmed", programmed, "Programmed", generation),
        ]});
        if let Some(addresses) = addresses {
            status["addresses"] = super::address::gateway_addresses(addresses);
        }
        let api: Api<Gateway> = Api::namespaced(client.clone(), &key.0);
        if let Err(e) = put_status(&api, gateway.clone(), status).await {
            failures.push(e);
        }
    }
    for route in seen.http_routes {
        if let Err(e) = put_route_status(client, route, "HTTPRoute", report).await {
            failures.push(e);
        }
    }
    for route in seen.grpc_routes {
        if let Err(e) = put_route_status(client, route, "GRPCRoute", report).await {
            failures.push(e);
        }
    }
    for failure in failures {
        log::warn!("ingress-controller: {failure} (written again after the next change)");
    }
}

/// A route's `status.parents`: one entry per Tidegate Gateway it names, with its conditions.
/// None when it names none of them (another controller's route: left alone).
fn route_parents(
    report: &Report,
    kind: &str,
    namespace: &str,
    name: &str,
    generation: Option<i64>,
) -> Option<Value> {
    let mine: Vec<Value> = report
        .route_statuses
        .iter()
        .filter(|s| s.kind == kind && s.namespace == namespace && s.name == name)
        .map(|s| {
            let mut parent = json!({"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                    "namespace": s.parent.0, "name": s.parent.1});
            if let Some(section) = &s.parent.2 {
                parent["sectionName"] = json!(section);
            }
            json!({"parentRef": parent, "controllerName": GATEWAY_CONTROLLER_NAME,
                   "conditions": [condition("Accepted", &s.accepted, "Accepted", generation),
                                  condition("ResolvedRefs", &s.resolved, "ResolvedRefs", generation)]})
        })
        .collect();
    (!mine.is_empty()).then(|| json!({"parents": mine}))
}

async fn put_route_status<K>(
    client: &kube::Client,
    route: &K,
    kind: &str,
    report: &Report,
) -> Result<(), String>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let meta = route.meta();
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    let Some(status) = route_parents(report, kind, &namespace, &name, meta.generation) else {
        return Ok(());
    };
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    put_status(&api, route.clone(), status).await
}

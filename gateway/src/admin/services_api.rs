//! `GET /api/services`: every service's endpoints as this gateway sees them now — from the
//! file or discovered — with weight, labels and health. The console shows them as the
//! services' live instances.

use super::json;
use crate::gateway::Gateway;
use http::{Response, StatusCode};

pub fn list(gateway: &Gateway) -> Response<Vec<u8>> {
    let snapshot = gateway.snapshot();
    let mut names: Vec<&String> = snapshot.services.keys().collect();
    names.sort();
    let services: Vec<serde_json::Value> = names
        .into_iter()
        .map(|name| {
            let service = &snapshot.services[name];
            let members = service.members();
            let endpoints: Vec<serde_json::Value> = members
                .endpoints
                .iter()
                .map(|e| {
                    let state = if e.weight == 0 {
                        "weight_zero"
                    } else if !e.state.is_healthy() {
                        "unhealthy"
                    } else if e.state.is_ejected() {
                        "ejected"
                    } else {
                        "usable"
                    };
                    serde_json::json!({
                        "addr": e.addr.to_string(),
                        "name": e.name.as_deref(),
                        "weight": e.weight,
                        "labels": e.labels,
                        "state": state,
                    })
                })
                .collect();
            serde_json::json!({
                "name": name,
                "source": if service.nacos.is_some() {
                    "nacos"
                } else if !service.kubernetes.is_empty() {
                    "kubernetes"
                } else if service.dns.is_some() {
                    "dns"
                } else {
                    "file"
                },
                "endpoints": endpoints,
            })
        })
        .collect();
    json(StatusCode::OK, serde_json::json!(services))
}

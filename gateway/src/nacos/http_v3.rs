//! The Nacos 3.x HTTP client API (`/nacos/v3/client/...`), for `protocol = "http"` against a
//! server that offers it (3.2 removed v1). Every answer is wrapped in
//! `{"code":0,"message":"success","data":…}`; code 0 is success.
//!
//! - instance list: `GET /nacos/v3/client/ns/instance/list` → `data` is a bare array of
//!   instances. Without `clusterName` the server lists only the `DEFAULT` cluster.
//! - config: `GET /nacos/v3/client/cs/config?dataId&groupName&namespaceId` → `data.content`;
//!   a missing data id is HTTP 200 with code 20004. There is no listener: the config is
//!   polled and compared by md5.
//! - registration: `POST /nacos/v3/client/ns/instance` (`heartBeat=true` for a beat: code
//!   21003 when the instance is gone), `DELETE` to deregister.

use super::client::{Answer, Client, Method};
use super::instances::{self, Instance};
use super::{Api, ServiceKey};
use crate::upstream::EndpointSpec;
use serde::Deserialize;

pub const INSTANCE_LIST: &str = "/nacos/v3/client/ns/instance/list";
pub const INSTANCE: &str = "/nacos/v3/client/ns/instance";
pub const CONFIG: &str = "/nacos/v3/client/cs/config";
/// The admin API's service detail (needs read rights on the namespace).
pub const SERVICE: &str = "/nacos/v3/admin/ns/service";

/// `ErrorCode.RESOURCE_NOT_FOUND`: no such config.
pub const RESOURCE_NOT_FOUND: i64 = 20004;
/// `ErrorCode.INSTANCE_NOT_FOUND`: a beat for an instance the server has forgotten.
pub const INSTANCE_NOT_FOUND: i64 = 21003;
/// `ErrorCode.SERVICE_NOT_EXIST`.
pub const SERVICE_NOT_EXIST: i64 = 21008;

/// The service name the probe asks for; nobody registers it.
const PROBE_SERVICE: &str = "__tidegate_probe__";

/// `{code, message, data}` of every v3 answer.
#[derive(Deserialize)]
pub struct Wrapped<T> {
    pub code: i64,
    #[serde(default)]
    pub message: Option<String>,
    pub data: Option<T>,
}

/// Parses a v3 answer (the HTTP status is not enough: not-found is a 200 with a code).
pub fn unwrap<T: serde::de::DeserializeOwned>(answer: &Answer) -> Result<Wrapped<T>, String> {
    serde_json::from_str(&answer.body).map_err(|e| {
        format!(
            "v3 answer (status {}) not understood: {e}: {}",
            answer.status,
            answer.body.trim()
        )
    })
}

/// Whether `answer`, the answer to the probe, comes from a server with the v3 client API:
/// any JSON object with a numeric `code` that is not a 404/410 (a 2.x server or rnacos
/// answers 404, Spring's error body has `status`, not `code`).
pub fn offers_v3(answer: &Answer) -> bool {
    if matches!(answer.status, 404 | 410) {
        return false;
    }
    serde_json::from_str::<serde_json::Value>(&answer.body)
        .ok()
        .is_some_and(|v| v.get("code").is_some_and(serde_json::Value::is_i64))
}

/// Probes one server once: does it offer the v3 client API? A transport error is an error
/// (not a verdict), so the probe is made again when the server answers.
pub async fn detect(client: &Client, server: &str) -> Result<Api, String> {
    let answer = client
        .call_one(
            server,
            &Method::Get,
            INSTANCE_LIST,
            &[
                ("serviceName", PROBE_SERVICE),
                ("namespaceId", client.namespace_or_public()),
            ],
            None,
            &[],
        )
        .await?;
    // A server (or a proxy in front of it) in trouble is no verdict.
    if answer.status >= 500 {
        return Err(format!("the API probe answered {}", answer.status));
    }
    Ok(if offers_v3(&answer) { Api::V3 } else { Api::V1 })
}

/// The instance list parameters of `key`.
pub fn list_params(client: &Client, key: &ServiceKey) -> Vec<(String, String)> {
    let mut params = vec![
        ("serviceName".to_string(), key.service.clone()),
        ("groupName".to_string(), key.group.clone()),
        (
            "namespaceId".to_string(),
            client.namespace_or_public().to_string(),
        ),
    ];
    // Without it the server lists the DEFAULT cluster only (fillDefaultValue).
    if !key.clusters.is_empty() {
        params.push(("clusterName".to_string(), key.clusters.clone()));
    }
    params
}

/// The instance list answer: `data` is a bare array of instances.
pub fn parse_instances(answer: &Answer, clusters: &str) -> Result<Vec<EndpointSpec>, String> {
    let wrapped: Wrapped<Vec<Instance>> = unwrap(answer)?;
    if wrapped.code != 0 {
        return Err(format!(
            "instance list answered code {}: {}",
            wrapped.code,
            wrapped.message.unwrap_or_default()
        ));
    }
    // An answer without data is not a list (an empty service answers `data: []`).
    let hosts = wrapped
        .data
        .ok_or_else(|| "instance list answered no data".to_string())?;
    instances::endpoints(hosts, clusters)
}

/// The service detail answer: whether the service exists. Anything but success or "service
/// not exist" (no admin rights, another error) is an error: nothing is concluded from it.
pub fn parse_exists(answer: &Answer) -> Result<bool, String> {
    let wrapped: Wrapped<serde_json::Value> = unwrap(answer)?;
    match wrapped.code {
        0 => Ok(true),
        SERVICE_NOT_EXIST => Ok(false),
        code => Err(format!(
            "service detail answered code {code}: {}",
            wrapped.message.unwrap_or_default()
        )),
    }
}

#[derive(Deserialize)]
struct ConfigData {
    #[serde(default)]
    content: Option<String>,
}

/// The config answer: `Ok(None)` when the data id does not exist.
pub fn parse_config(answer: &Answer) -> Result<Option<String>, String> {
    let wrapped: Wrapped<ConfigData> = unwrap(answer)?;
    match wrapped.code {
        0 => Ok(Some(
            wrapped.data.and_then(|d| d.content).unwrap_or_default(),
        )),
        RESOURCE_NOT_FOUND => Ok(None),
        code => Err(format!(
            "config fetch answered code {code}: {}",
            wrapped.message.unwrap_or_default()
        )),
    }
}

/// The answer to a registration or beat: `Ok(false)` when a beat finds the instance gone.
pub fn parse_instance_answer(answer: &Answer) -> Result<bool, String> {
    let wrapped: Wrapped<serde_json::Value> = unwrap(answer)?;
    match wrapped.code {
        0 => Ok(true),
        INSTANCE_NOT_FOUND => Ok(false),
        code => Err(format!(
            "instance call answered code {code}: {}",
            wrapped.message.unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn the_probe_tells_v3_from_v1() {
        assert!(offers_v3(&answer(
            200,
            r#"{"code":0,"message":"success","data":[]}"#
        )));
        // Auth on, no rights: still a v3 server.
        assert!(offers_v3(&answer(
            403,
            r#"{"code":403,"message":"no right","data":null}"#
        )));
        // rnacos and 2.x: no such route.
        assert!(!offers_v3(&answer(404, "")));
        assert!(!offers_v3(&answer(
            404,
            r#"{"timestamp":"2025-01-01","status":404,"error":"Not Found","path":"/nacos/v3/client/ns/instance/list"}"#
        )));
        assert!(!offers_v3(&answer(410, r#"{"code":40000}"#)));
        assert!(!offers_v3(&answer(200, "<html></html>")));
    }

    #[test]
    fn instance_lists_are_bare_arrays_in_data() {
        let list = parse_instances(
            &answer(
                200,
                r#"{"code":0,"message":"success","data":[
                    {"instanceId":"10.0.0.2#80#DEFAULT#DEFAULT_GROUP@@chat","ip":"10.0.0.2","port":80,"weight":2.0,
                     "healthy":true,"enabled":true,"ephemeral":true,"clusterName":"DEFAULT",
                     "serviceName":"DEFAULT_GROUP@@chat","metadata":{"stage":"blue"}},
                    {"ip":"10.0.0.1","port":80,"weight":1.0,"healthy":false,"enabled":true,"clusterName":"DEFAULT","metadata":{}}
                ]}"#,
            ),
            "",
        )
        .expect("parses");
        let got: Vec<(String, u32)> = list
            .iter()
            .map(|e| (e.addr.to_string(), e.weight))
            .collect();
        assert_eq!(
            got,
            vec![("10.0.0.1:80".into(), 0), ("10.0.0.2:80".into(), 1)]
        );
        assert_eq!(list[1].labels["stage"], "blue");
        assert_eq!(
            parse_instances(
                &answer(200, r#"{"code":0,"message":"success","data":[]}"#),
                ""
            )
            .expect("empty is valid"),
            vec![]
        );
        assert!(parse_instances(&answer(200, r#"{"code":0,"data":null}"#), "").is_err());
        assert!(parse_instances(
            &answer(
                400,
                r#"{"code":10000,"message":"Required parameter 'serviceName'","data":null}"#
            ),
            ""
        )
        .is_err());
        assert!(parse_instances(&answer(502, "<html>bad gateway</html>"), "").is_err());
    }

    #[test]
    fn config_not_found_is_a_code_not_a_status() {
        assert_eq!(
            parse_config(&answer(
                200,
                r#"{"code":0,"message":"success","data":{"resultCode":200,"errorCode":0,"content":"a = 1","md5":"x","contentType":"toml","lastModified":1,"beta":false,"success":true}}"#
            )),
            Ok(Some("a = 1".to_string()))
        );
        assert_eq!(
            parse_config(&answer(
                200,
                r#"{"code":20004,"message":"resource not found","data":null}"#
            )),
            Ok(None)
        );
        assert!(parse_config(&answer(
            403,
            r#"{"code":403,"message":"no right","data":null}"#
        ))
        .is_err());
    }

    #[test]
    fn service_detail_and_beats() {
        assert_eq!(
            parse_exists(&answer(200, r#"{"code":0,"data":{"serviceName":"chat"}}"#)),
            Ok(true)
        );
        assert_eq!(
            parse_exists(&answer(
                404,
                r#"{"code":21008,"message":"service not exist","data":null}"#
            )),
            Ok(false)
        );
        assert!(parse_exists(&answer(403, r#"{"code":403,"data":null}"#)).is_err());
        assert_eq!(
            parse_instance_answer(&answer(200, r#"{"code":0,"data":"ok"}"#)),
            Ok(true)
        );
        assert_eq!(
            parse_instance_answer(&answer(
                200,
                r#"{"code":21003,"message":"instance not found","data":null}"#
            )),
            Ok(false)
        );
    }
}

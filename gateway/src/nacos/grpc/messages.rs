//! The JSON bodies Tidegate sends over gRPC, and the parts of the answers it reads.
//!
//! rnacos parses with plain serde: a non-optional field that is missing fails the request,
//! so every field a server may require is sent, even when empty. Java Nacos ignores unknown
//! fields and leaves out nulls. Answers are judged by `resultCode == 200` (rnacos never sends
//! `success`); errors come as `ErrorResponse` or with `resultCode` 500 and an `errorCode`.

use crate::nacos::instances::{self, Instance};
use crate::nacos::{default_group, ServiceKey};
use crate::upstream::EndpointSpec;
use serde::Deserialize;
use serde_json::{json, Value};

/// `errorCode` of a request on a connection the server does not know (any more).
pub const UNREGISTERED: i64 = 301;
/// `errorCode` of a request without (valid) credentials.
pub const NO_RIGHT: i64 = 403;
/// `errorCode` of ConfigQueryResponse when the data id does not exist.
pub const CONFIG_NOT_FOUND: i64 = 300;

/// `clientVersion` of ConnectionSetupRequest: `<name>:v<version>`.
pub fn client_version() -> String {
    format!("Tidegate:v{}", env!("CARGO_PKG_VERSION"))
}

pub fn server_check() -> Value {
    json!({"headers": {}, "module": "internal"})
}

pub fn health_check() -> Value {
    json!({"headers": {}, "module": "internal"})
}

/// The first message on the stream. The labels say "naming": the Java server creates the
/// naming client of a connection only for that module (config does not look at it), so
/// one connection carries both. A (possibly empty) `abilityTable` makes Nacos 2.2+ answer
/// with SetupAckRequest, which also brings the stream's response headers.
pub fn connection_setup(namespace: &str) -> Value {
    json!({
        "headers": {},
        "module": "internal",
        "clientVersion": client_version(),
        "tenant": namespace,
        "labels": {"source": "sdk", "module": "naming"},
        "abilityTable": {},
    })
}

/// SubscribeServiceRequest (`subscribe: false` unsubscribes). Always for every cluster: a
/// connection has one subscriber per service on the Java server, and rnacos ignores the
/// clusters; bindings filter on our side.
pub fn subscribe(namespace: &str, group: &str, service: &str, subscribe: bool) -> Value {
    json!({
        "headers": {},
        "module": "naming",
        "namespace": namespace,
        "serviceName": service,
        "groupName": group,
        "subscribe": subscribe,
        "clusters": "",
    })
}

/// ServiceQueryRequest; the answer type is QueryServiceResponse.
pub fn service_query(namespace: &str, group: &str, service: &str) -> Value {
    json!({
        "headers": {},
        "module": "naming",
        "namespace": namespace,
        "serviceName": service,
        "groupName": group,
        "cluster": "",
        "healthyOnly": false,
        "udpPort": 0,
    })
}

/// ServiceListRequest: one page (1-based) of the service names of a group. The only way
/// over gRPC to tell a service the registry does not know from one without instances
/// (ServiceQuery answers an empty ServiceInfo for both).
pub fn service_list(namespace: &str, group: &str, page_no: u32, page_size: u32) -> Value {
    json!({
        "headers": {},
        "module": "naming",
        "namespace": namespace,
        "groupName": group,
        "pageNo": page_no,
        "pageSize": page_size,
    })
}

/// ServiceListResponse: whether `service` is among the names, and the total count.
/// Java writes plain names, rnacos too; `group@@name` is accepted as well.
pub fn service_listed(answer: &Value, group: &str, service: &str) -> (bool, u64) {
    let grouped = format!("{group}@@{service}");
    let found = answer["serviceNames"].as_array().is_some_and(|names| {
        names
            .iter()
            .filter_map(Value::as_str)
            .any(|n| n == service || n == grouped)
    });
    (found, answer["count"].as_u64().unwrap_or(0))
}

/// InstanceRequest: `registerInstance` or `deregisterInstance`, ephemeral.
pub fn instance(
    namespace: &str,
    group: &str,
    service: &str,
    register: bool,
    instance: Value,
) -> Value {
    json!({
        "headers": {},
        "module": "naming",
        "namespace": namespace,
        "serviceName": service,
        "groupName": group,
        "type": if register { "registerInstance" } else { "deregisterInstance" },
        "instance": instance,
    })
}

/// ConfigBatchListenRequest for one data id, with the md5 we hold ("" for none).
pub fn config_listen(listen: bool, data_id: &str, group: &str, tenant: &str, md5: &str) -> Value {
    json!({
        "headers": {},
        "module": "config",
        "listen": listen,
        "configListenContexts": [
            {"dataId": data_id, "group": group, "tenant": tenant, "md5": md5}
        ],
    })
}

/// ConfigChangeBatchListenResponse: whether anything listened to differs from our md5.
pub fn config_changed(answer: &Value) -> bool {
    answer["changedConfigs"]
        .as_array()
        .is_some_and(|changed| !changed.is_empty())
}

pub fn config_query(data_id: &str, group: &str, tenant: &str) -> Value {
    json!({
        "headers": {},
        "module": "config",
        "dataId": data_id,
        "group": group,
        "tenant": tenant,
    })
}

/// The answer to a server push: `<Xxx>Response` with the push's requestId.
pub fn ack(push_kind: &str, request_id: &str) -> Option<(String, Value)> {
    let kind = match push_kind {
        "NotifySubscriberRequest" => "NotifySubscriberResponse",
        "ConfigChangeNotifyRequest" => "ConfigChangeNotifyResponse",
        "ClientDetectionRequest" => "ClientDetectionResponse",
        "ConnectResetRequest" => "ConnectResetResponse",
        // SetupAckRequest is sent without waiting for an answer; the Java client gives none.
        _ => return None,
    };
    Some((
        kind.to_string(),
        json!({"resultCode": 200, "errorCode": 0, "requestId": request_id}),
    ))
}

/// A push's requestId (a string; a number is accepted).
pub fn request_id(push: &Value) -> String {
    match &push["requestId"] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// How a server answered: success, or an error with its code.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Ok,
    Error { code: i64, message: String },
}

/// Judges an answer of type `kind`.
pub fn outcome(kind: &str, answer: &Value) -> Outcome {
    let result = answer["resultCode"].as_i64();
    if kind != "ErrorResponse" && result == Some(200) {
        return Outcome::Ok;
    }
    let code = answer["errorCode"]
        .as_i64()
        .filter(|c| *c != 0)
        .or(result)
        .unwrap_or(500);
    Outcome::Error {
        code,
        message: answer["message"].as_str().unwrap_or("").to_string(),
    }
}

/// A ServiceInfo, from a push or an answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceInfo {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    hosts: Option<Vec<Instance>>,
    #[serde(default)]
    last_ref_time: Option<i64>,
}

impl ServiceInfo {
    pub fn parse(value: &Value) -> Result<ServiceInfo, String> {
        ServiceInfo::deserialize(value).map_err(|e| format!("service info not understood: {e}"))
    }

    /// Group and plain service name: `name` may be `group@@svc` (accepted by the Java
    /// client) or plain with `groupName` beside it (what servers send).
    pub fn group_and_service(&self) -> Option<(String, String)> {
        let name = self.name.as_deref().filter(|n| !n.is_empty())?;
        if let Some((group, service)) = name.split_once("@@") {
            return Some((group.to_string(), service.to_string()));
        }
        let group = self
            .group_name
            .clone()
            .filter(|g| !g.is_empty())
            .unwrap_or_else(default_group);
        Some((group, name.to_string()))
    }

    /// When the server built it (ms); 0 when not said.
    pub fn last_ref_time(&self) -> i64 {
        self.last_ref_time.unwrap_or(0)
    }

    /// The endpoints for one binding of this service (its clusters filtered here). No
    /// `hosts` is an empty list.
    pub fn endpoints(&self, key: &ServiceKey) -> Result<Vec<EndpointSpec>, String> {
        let hosts = self.hosts.clone().unwrap_or_default();
        instances::endpoints(hosts, &key.clusters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str, clusters: &str) -> ServiceKey {
        ServiceKey {
            service: service.into(),
            group: "DEFAULT_GROUP".into(),
            clusters: clusters.into(),
        }
    }

    /// A NotifySubscriberRequest as rnacos 0.8.8 sends it (`allIPs`, nulls), and the
    /// serviceInfo of the Java server (`allIps`, `valid`, extra instance getters).
    #[test]
    fn service_infos_become_endpoints() {
        let rnacos = json!({
            "module": "naming", "requestId": "12", "headers": {},
            "namespace": "public", "serviceName": "chat", "groupName": "DEFAULT_GROUP",
            "serviceInfo": {
                "name": "chat", "groupName": "DEFAULT_GROUP", "clusters": "", "cacheMillis": 10000,
                "lastRefTime": 1700000000123i64, "checksum": null, "allIPs": false, "reachProtectionThreshold": false,
                "hosts": [
                    {"instanceId": null, "ip": "10.0.0.2", "port": 8080, "weight": 2.0, "healthy": true, "enabled": true,
                     "ephemeral": true, "clusterName": "a", "serviceName": "DEFAULT_GROUP@@chat", "metadata": {"stage": "blue"}},
                    {"instanceId": null, "ip": "10.0.0.1", "port": 8080, "weight": 1.0, "healthy": true, "enabled": true,
                     "ephemeral": false, "clusterName": "b", "serviceName": "DEFAULT_GROUP@@chat", "metadata": null}
                ]
            }
        });
        let info = ServiceInfo::parse(&rnacos["serviceInfo"]).expect("parses");
        assert_eq!(
            info.group_and_service(),
            Some(("DEFAULT_GROUP".into(), "chat".into()))
        );
        assert_eq!(info.last_ref_time(), 1_700_000_000_123);
        let all = info.endpoints(&key("chat", "")).expect("endpoints");
        let got: Vec<(String, u32)> = all.iter().map(|e| (e.addr.to_string(), e.weight)).collect();
        assert_eq!(
            got,
            vec![("10.0.0.1:8080".into(), 1), ("10.0.0.2:8080".into(), 2)]
        );
        assert_eq!(all[1].labels["stage"], "blue");
        assert_eq!(all[1].labels["cluster"], "a");
        let only_a = info.endpoints(&key("chat", "a")).expect("endpoints");
        assert_eq!(only_a.len(), 1);
        assert_eq!(only_a[0].addr.to_string(), "10.0.0.2:8080");

        let java = json!({
            "name": "DEFAULT_GROUP@@chat", "groupName": "DEFAULT_GROUP", "clusters": "", "cacheMillis": 10000,
            "lastRefTime": 1, "checksum": "abc", "allIps": false, "reachProtectionThreshold": false, "valid": true,
            "hosts": [
                {"instanceId": "10.0.0.3#80#DEFAULT#DEFAULT_GROUP@@chat", "ip": "10.0.0.3", "port": 80, "weight": 1.0,
                 "healthy": false, "enabled": true, "ephemeral": true, "clusterName": "DEFAULT",
                 "serviceName": "DEFAULT_GROUP@@chat", "metadata": {}, "instanceHeartBeatInterval": 5000,
                 "instanceHeartBeatTimeOut": 15000, "ipDeleteTimeout": 30000, "instanceIdGenerator": "simple"}
            ]
        });
        let info = ServiceInfo::parse(&java).expect("parses");
        assert_eq!(
            info.group_and_service(),
            Some(("DEFAULT_GROUP".into(), "chat".into()))
        );
        let list = info.endpoints(&key("chat", "")).expect("endpoints");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].weight, 0, "unhealthy: listed, no traffic");

        // An empty service: no hosts at all, or null.
        let empty = ServiceInfo::parse(&json!({"name": "chat", "groupName": "g", "hosts": null}))
            .expect("parses");
        assert_eq!(empty.group_and_service(), Some(("g".into(), "chat".into())));
        assert_eq!(empty.endpoints(&key("chat", "")).expect("empty"), vec![]);
        assert!(
            ServiceInfo::parse(&json!({"name": "chat", "hosts": [{"ip": "x", "port": 1}]}))
                .expect("parses")
                .endpoints(&key("chat", ""))
                .is_err()
        );
    }

    #[test]
    fn pushes_are_acked_with_their_request_id() {
        let (kind, body) = ack("NotifySubscriberRequest", "42").expect("answered");
        assert_eq!(kind, "NotifySubscriberResponse");
        assert_eq!(
            body,
            json!({"resultCode": 200, "errorCode": 0, "requestId": "42"})
        );
        assert_eq!(
            ack("ConfigChangeNotifyRequest", "1").expect("answered").0,
            "ConfigChangeNotifyResponse"
        );
        assert_eq!(
            ack("ClientDetectionRequest", "1").expect("answered").0,
            "ClientDetectionResponse"
        );
        assert_eq!(
            ack("ConnectResetRequest", "1").expect("answered").0,
            "ConnectResetResponse"
        );
        assert!(ack("SetupAckRequest", "1").is_none());
        assert_eq!(request_id(&json!({"requestId": "7"})), "7");
        assert_eq!(request_id(&json!({"requestId": 7})), "7");
        assert_eq!(request_id(&json!({})), "");
    }

    #[test]
    fn answers_are_judged_by_result_code() {
        assert_eq!(
            outcome(
                "ServerCheckResponse",
                &json!({"resultCode": 200, "errorCode": 0})
            ),
            Outcome::Ok
        );
        assert_eq!(
            outcome(
                "ErrorResponse",
                &json!({"resultCode": 500, "errorCode": 301, "message": "Connection is unregistered."})
            ),
            Outcome::Error {
                code: 301,
                message: "Connection is unregistered.".into()
            }
        );
        // Java's auth filter: resultCode 500 with errorCode 403.
        assert_eq!(
            outcome(
                "InstanceResponse",
                &json!({"resultCode": 500, "errorCode": 403, "message": "no right"})
            ),
            Outcome::Error {
                code: 403,
                message: "no right".into()
            }
        );
        assert_eq!(
            outcome(
                "ConfigQueryResponse",
                &json!({"resultCode": 500, "errorCode": 300})
            ),
            Outcome::Error {
                code: 300,
                message: String::new()
            }
        );
        assert_eq!(
            outcome("X", &json!(null)),
            Outcome::Error {
                code: 500,
                message: String::new()
            }
        );
    }

    #[test]
    fn request_shapes() {
        let setup = connection_setup("public");
        assert_eq!(setup["labels"]["module"], "naming");
        assert!(setup["abilityTable"].is_object());
        assert!(setup["clientVersion"]
            .as_str()
            .expect("string")
            .starts_with("Tidegate:v"));
        let sub = subscribe("public", "DEFAULT_GROUP", "chat", true);
        assert_eq!(sub["subscribe"], true);
        assert_eq!(sub["clusters"], "");
        let reg = instance("public", "g", "tidegate", true, json!({"ip": "10.0.0.1"}));
        assert_eq!(reg["type"], "registerInstance");
        assert_eq!(
            instance("public", "g", "s", false, json!({}))["type"],
            "deregisterInstance"
        );
        let listen = config_listen(true, "gw.toml", "DEFAULT_GROUP", "", "");
        assert_eq!(listen["configListenContexts"][0]["md5"], "");
        assert!(!config_changed(
            &json!({"resultCode": 200, "changedConfigs": []})
        ));
        assert!(config_changed(
            &json!({"changedConfigs": [{"dataId": "gw.toml", "group": "DEFAULT_GROUP", "tenant": ""}]})
        ));
        let listed = json!({"resultCode": 200, "count": 3, "serviceNames": ["a", "chat", "b"]});
        assert_eq!(service_listed(&listed, "DEFAULT_GROUP", "chat"), (true, 3));
        assert_eq!(
            service_listed(&listed, "DEFAULT_GROUP", "orders"),
            (false, 3)
        );
        assert_eq!(
            service_listed(
                &json!({"count": 0, "serviceNames": null}),
                "DEFAULT_GROUP",
                "chat"
            ),
            (false, 0)
        );
    }
}

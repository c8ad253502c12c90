//! Self-registration: each gateway puts itself into Nacos (service `tidegate` by default,
//! admin address in the metadata), so a console can find the fleet. Over HTTP (v1 or the v3
//! client API) the entry is kept alive with heartbeats; over gRPC it is an ephemeral instance
//! bound to the connection (registered again on every reconnect, see `grpc::client`). It
//! deregisters when it stops.

use super::client::{Answer, Client, Method, Request};
use super::{http_v3, Api};
use crate::config::nacos::RegisterConfig;
use std::collections::BTreeMap;
use std::time::Duration;

const BEAT: Duration = Duration::from_secs(5);

/// Who this gateway is in the registry.
pub struct Registration {
    pub ip: String,
    pub port: u16,
    pub service: String,
    pub group: String,
    pub metadata: BTreeMap<String, String>,
}

impl Registration {
    pub fn new(config: &RegisterConfig, admin_listen: &str) -> Result<Registration, String> {
        let (ip, port) = config.address(admin_listen)?;
        let mut metadata = config.metadata.clone();
        metadata.insert("admin".into(), format!("{ip}:{port}"));
        metadata.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        metadata.insert("pid".into(), std::process::id().to_string());
        Ok(Registration {
            ip,
            port,
            service: config.service.clone(),
            group: config.group.clone(),
            metadata,
        })
    }

    fn metadata_json(&self) -> String {
        serde_json::to_string(&self.metadata).expect("string map")
    }

    /// The instance as the gRPC InstanceRequest carries it. rnacos parses it strictly:
    /// every field is sent, and `serviceName` is the plain name (rnacos takes it over the
    /// request's when set).
    pub fn instance_json(&self) -> serde_json::Value {
        serde_json::json!({
            "ip": self.ip,
            "port": self.port,
            "weight": 1.0,
            "healthy": true,
            "enabled": true,
            "ephemeral": true,
            "clusterName": "DEFAULT",
            "serviceName": self.service,
            "metadata": self.metadata,
        })
    }

    /// Who this instance is, as every instance call names it.
    fn params<'a>(&'a self, port: &'a str, namespace: &'a str) -> [(&'a str, &'a str); 6] {
        [
            ("ip", &self.ip),
            ("port", port),
            ("serviceName", &self.service),
            ("groupName", &self.group),
            ("namespaceId", namespace),
            ("ephemeral", "true"),
        ]
    }

    /// An instance call for the API of the server it goes to.
    fn request(&self, client: &Client, api: Api, what: Call) -> Request {
        let port = self.port.to_string();
        let metadata = self.metadata_json();
        if api == Api::V3 {
            let mut params = self.params(&port, client.namespace_or_public()).to_vec();
            match what {
                Call::Register | Call::Beat => {
                    params.extend([
                        ("metadata", metadata.as_str()),
                        ("weight", "1.0"),
                        ("healthy", "true"),
                        ("enabled", "true"),
                    ]);
                    if what == Call::Beat {
                        params.push(("heartBeat", "true"));
                    }
                    return Request::new(Method::Post, http_v3::INSTANCE, &params);
                }
                Call::Deregister => {
                    return Request::new(Method::Delete, http_v3::INSTANCE, &params)
                }
            }
        }
        let mut params = self.params(&port, &client.namespace).to_vec();
        match what {
            Call::Register => {
                params.push(("metadata", &metadata));
                Request::new(Method::Post, "/nacos/v1/ns/instance", &params)
            }
            Call::Beat => {
                let beat = serde_json::json!({
                    "ip": self.ip,
                    "port": self.port,
                    "serviceName": format!("{}@@{}", self.group, self.service),
                    "scheduled": true,
                    "weight": 1.0,
                })
                .to_string();
                params.push(("beat", &beat));
                Request::new(Method::Put, "/nacos/v1/ns/instance/beat", &params)
            }
            Call::Deregister => Request::new(Method::Delete, "/nacos/v1/ns/instance", &params),
        }
    }

    async fn call(&self, client: &Client, what: Call) -> Result<(Api, Answer), String> {
        let make = |api: Api| self.request(client, api, what);
        client.call_api(&make, None, &[]).await
    }

    async fn register(&self, client: &Client) -> Result<(), String> {
        let (api, answer) = self.call(client, Call::Register).await?;
        if api == Api::V3 {
            return http_v3::parse_instance_answer(&answer)
                .map(|_| ())
                .map_err(|e| format!("registration: {e}"));
        }
        match answer.status {
            200 => Ok(()),
            s => Err(format!("registration answered {s}: {}", answer.body.trim())),
        }
    }

    /// One heartbeat; false when the registry no longer knows this instance.
    async fn beat(&self, client: &Client) -> Result<bool, String> {
        let (api, answer) = self.call(client, Call::Beat).await?;
        if api == Api::V3 {
            return http_v3::parse_instance_answer(&answer);
        }
        // Nacos answers {"code":20404} for an instance it has forgotten.
        Ok(answer.status == 200 && !answer.body.contains("20404"))
    }

    pub async fn deregister(&self, client: &Client) {
        let _ = self.call(client, Call::Deregister).await;
    }

    /// Registers, then beats; registers again whenever a beat finds the entry gone (a
    /// restarted registry). Runs until aborted.
    pub async fn keep_alive(&self, client: &Client) {
        let mut registered = false;
        loop {
            let result = if registered {
                self.beat(client).await
            } else {
                self.register(client).await.map(|_| true)
            };
            match result {
                Ok(known) => {
                    if !registered && known {
                        log::info!(
                            "registered in nacos as {}@@{} {}:{}",
                            self.group,
                            self.service,
                            self.ip,
                            self.port
                        );
                    }
                    registered = known;
                }
                Err(e) => {
                    log::warn!("nacos self-registration: {e}");
                    registered = false;
                }
            }
            tokio::time::sleep(BEAT).await;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Register,
    Beat,
    Deregister,
}

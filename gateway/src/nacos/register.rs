//! Self-registration: each gateway puts itself into Nacos (service `tidegate` by default,
//! admin address in the metadata) and keeps the entry alive with heartbeats, so a console
//! can find the fleet. It deregisters when it stops.

use super::client::{Client, Method};
use crate::config::nacos::RegisterConfig;
use std::time::Duration;

const BEAT: Duration = Duration::from_secs(5);

/// Who this gateway is in the registry.
pub struct Registration {
    pub ip: String,
    pub port: u16,
    pub service: String,
    pub group: String,
    pub metadata: String,
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
            metadata: serde_json::to_string(&metadata).expect("string map"),
        })
    }

    /// Who this instance is, as every instance call names it.
    fn params<'a>(&'a self, port: &'a str, client: &'a Client) -> [(&'a str, &'a str); 6] {
        [
            ("ip", &self.ip),
            ("port", port),
            ("serviceName", &self.service),
            ("groupName", &self.group),
            ("namespaceId", &client.namespace),
            ("ephemeral", "true"),
        ]
    }

    async fn register(&self, client: &Client) -> Result<(), String> {
        let port = self.port.to_string();
        let mut params = self.params(&port, client).to_vec();
        params.push(("metadata", &self.metadata));
        let answer = client
            .call(Method::Post, "/nacos/v1/ns/instance", &params, None, &[])
            .await?;
        match answer.status {
            200 => Ok(()),
            s => Err(format!("registration answered {s}: {}", answer.body.trim())),
        }
    }

    /// One heartbeat; false when the registry no longer knows this instance.
    async fn beat(&self, client: &Client) -> Result<bool, String> {
        let beat = serde_json::json!({
            "ip": self.ip,
            "port": self.port,
            "serviceName": format!("{}@@{}", self.group, self.service),
            "scheduled": true,
            "weight": 1.0,
        })
        .to_string();
        let port = self.port.to_string();
        let mut params = self.params(&port, client).to_vec();
        params.push(("beat", &beat));
        let answer = client
            .call(
                Method::Put,
                "/nacos/v1/ns/instance/beat",
                &params,
                None,
                &[],
            )
            .await?;
        // Nacos answers {"code":20404} for an instance it has forgotten.
        Ok(answer.status == 200 && !answer.body.contains("20404"))
    }

    pub async fn deregister(&self, client: &Client) {
        let port = self.port.to_string();
        let params = self.params(&port, client);
        let _ = client
            .call(Method::Delete, "/nacos/v1/ns/instance", &params, None, &[])
            .await;
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

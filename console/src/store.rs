//! The config store the gateways read: the TOML file (written atomically, so a watching
//! gateway never reads half a file) or a Nacos data id (published; gateways long-poll it).

use crate::config::StoreConfig;
use tidegate::nacos::client::{Client, Method};

pub enum Store {
    File(std::path::PathBuf),
    Nacos {
        client: Box<Client>,
        data_id: String,
        group: String,
    },
}

impl Store {
    pub fn new(config: &StoreConfig) -> Result<Store, String> {
        Ok(match config {
            StoreConfig::File { path, .. } => Store::File(path.into()),
            StoreConfig::Nacos {
                nacos,
                data_id,
                group,
                ..
            } => Store::Nacos {
                client: Box::new(Client::new(nacos)?),
                data_id: data_id.clone(),
                group: group.clone(),
            },
        })
    }

    /// Where changes go, for messages and the gateways' `origin`.
    pub fn describe(&self) -> String {
        match self {
            Store::File(path) => path.display().to_string(),
            Store::Nacos { data_id, group, .. } => format!("nacos {group}/{data_id}"),
        }
    }

    pub async fn read(&self) -> Result<String, String> {
        match self {
            Store::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
            Store::Nacos {
                client,
                data_id,
                group,
            } => {
                let answer = client
                    .call(
                        Method::Get,
                        "/nacos/v1/cs/configs",
                        &[
                            ("dataId", data_id),
                            ("group", group),
                            ("tenant", &client.namespace),
                        ],
                        None,
                        &[],
                    )
                    .await?;
                match answer.status {
                    200 => Ok(answer.body),
                    404 => Ok(String::new()),
                    s => Err(format!("nacos answered {s}: {}", answer.body.trim())),
                }
            }
        }
    }

    pub async fn write(&self, text: &str) -> Result<(), String> {
        match self {
            Store::File(path) => {
                let tmp = path.with_extension("toml.console-tmp");
                tokio::fs::write(&tmp, text)
                    .await
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
                tokio::fs::rename(&tmp, path)
                    .await
                    .map_err(|e| format!("cannot replace {}: {e}", path.display()))
            }
            Store::Nacos {
                client,
                data_id,
                group,
            } => {
                let answer = client
                    .call(
                        Method::Post,
                        "/nacos/v1/cs/configs",
                        &[
                            ("dataId", data_id),
                            ("group", group),
                            ("tenant", &client.namespace),
                            ("content", text),
                            ("type", "toml"),
                        ],
                        None,
                        &[],
                    )
                    .await?;
                if answer.status == 200 && answer.body.trim() == "true" {
                    Ok(())
                } else {
                    Err(format!(
                        "nacos refused the publication: {} {}",
                        answer.status,
                        answer.body.trim()
                    ))
                }
            }
        }
    }
}

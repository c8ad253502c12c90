//! `console.toml`: where the console listens, which config store it edits, which gateways
//! make up the fleet, and who may log in.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    pub store: StoreConfig,
    #[serde(default)]
    pub fleet: FleetConfig,
    #[serde(default)]
    pub users: Vec<UserConfig>,
    #[serde(default)]
    pub session: SessionConfig,
}

fn default_listen() -> String {
    "127.0.0.1:9900".into()
}

/// The config the gateways read: a file they watch, or a Nacos data id they long-poll.
/// (Read through [`RawStore`]: serde's tagged enums buffer their input, which loses the
/// positions the Nacos section's types keep.)
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawStore")]
pub enum StoreConfig {
    File {
        path: String,
        /// Versions and the audit log.
        history_dir: String,
    },
    Nacos {
        nacos: Box<tidegate::nacos::NacosConfig>,
        #[serde(default = "default_data_id")]
        data_id: String,
        #[serde(default = "tidegate::nacos::default_group")]
        group: String,
        history_dir: String,
    },
}

fn default_data_id() -> String {
    "tidegate.toml".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    kind: StoreKind,
    path: Option<String>,
    history_dir: String,
    nacos: Option<tidegate::nacos::NacosConfig>,
    #[serde(default = "default_data_id")]
    data_id: String,
    #[serde(default = "tidegate::nacos::default_group")]
    group: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum StoreKind {
    File,
    Nacos,
}

impl TryFrom<RawStore> for StoreConfig {
    type Error = String;

    fn try_from(raw: RawStore) -> Result<StoreConfig, String> {
        match (raw.kind, raw.path, raw.nacos) {
            (StoreKind::File, Some(path), None) => Ok(StoreConfig::File {
                path,
                history_dir: raw.history_dir,
            }),
            (StoreKind::Nacos, None, Some(nacos)) => Ok(StoreConfig::Nacos {
                nacos: Box::new(nacos),
                data_id: raw.data_id,
                group: raw.group,
                history_dir: raw.history_dir,
            }),
            (StoreKind::File, _, _) => {
                Err("[store] kind = \"file\" needs `path` (and no `nacos`)".into())
            }
            (StoreKind::Nacos, _, _) => Err(
                "[store] kind = \"nacos\" needs `nacos = { servers = [...] }` (and no `path`)"
                    .into(),
            ),
        }
    }
}

impl StoreConfig {
    pub fn history_dir(&self) -> &str {
        match self {
            StoreConfig::File { history_dir, .. } | StoreConfig::Nacos { history_dir, .. } => {
                history_dir
            }
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Gateways by admin URL.
    #[serde(default)]
    pub gateways: Vec<GatewayConfig>,
    /// Also find gateways registered in Nacos under this service (store kind "nacos").
    pub nacos_service: Option<String>,
    /// Admin API token of the gateways (literal, `env:` or `file:`), unless a gateway has its own.
    pub token: Option<String>,
    #[serde(default = "default_scrape")]
    pub scrape_interval_ms: u64,
}

fn default_scrape() -> u64 {
    2000
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    pub name: String,
    /// e.g. `http://10.0.1.5:9080`
    pub admin: String,
    pub token: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// An argon2 hash (`tidegate-console hash-password`); never a password.
    pub password_hash: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// Mark the cookie Secure (set when the console is served over https).
    pub secure_cookie: bool,
    pub ttl_minutes: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            secure_cookie: false,
            ttl_minutes: 480,
        }
    }
}

impl ConsoleConfig {
    pub fn load(path: &std::path::Path) -> Result<ConsoleConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
        let config: ConsoleConfig = toml::from_str(&text).map_err(|e| {
            let error = tidegate::config::ConfigError::at_span(&text, e.span(), e.message());
            format!("{}:{error}", path.display())
        })?;
        for user in &config.users {
            argon2::PasswordHash::new(&user.password_hash).map_err(|_| {
                format!(
                    "{}: user {:?}: password_hash must be an argon2 hash (tidegate-console hash-password)",
                    path.display(),
                    user.name
                )
            })?;
        }
        Ok(config)
    }
}

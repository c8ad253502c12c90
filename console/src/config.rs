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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
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
            let (line, column) = e
                .span()
                .map(|s| line_column(&text, s.start))
                .unwrap_or((1, 1));
            format!("{}:{line}:{column}: {}", path.display(), e.message().trim())
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

pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

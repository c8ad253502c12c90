//! `tidegate-console`: the control plane. A separate process that edits the config store the
//! gateways watch and reads their admin listeners; it never sits on the request path, and
//! the gateways keep serving while it is down.

mod api;
mod assets;
mod auth;
mod config;
mod document;
mod error;
mod fleet;
mod history;
mod secrets;
mod store;
mod validate;

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "tidegate-console",
    version,
    about = "Tidegate console (control plane)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Console config (TOML).
    #[arg(short = 'c', long = "config", default_value = "conf/console.toml")]
    config: std::path::PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Print an argon2 hash of a password read from stdin, for `[[users]] password_hash`.
    HashPassword,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    if let Some(Command::HashPassword) = cli.command {
        let mut password = String::new();
        if std::io::stdin().read_line(&mut password).is_err() || password.trim().is_empty() {
            eprintln!("type a password on stdin");
            return ExitCode::from(2);
        }
        println!(
            "{}",
            auth::hash_password(password.trim_end_matches(['\r', '\n']))
        );
        return ExitCode::SUCCESS;
    }
    let config = match config::ConsoleConfig::load(&cli.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

async fn run(config: config::ConsoleConfig) -> Result<(), String> {
    let store = store::Store::new(&config.store)?;
    let history = history::History::open(config.store.history_dir())?;
    let fleet = Arc::new(fleet::Fleet::new(config.fleet.clone(), &config.store)?);
    let current_hash = Arc::new(parking_lot::Mutex::new(String::new()));
    // The store as it is now is the first version.
    match store.read().await {
        Ok(text) => {
            let hash = tidegate::snapshot::content_hash(&text);
            if history.latest().is_none_or(|m| m.hash != hash) {
                let author = if history.latest().is_none() {
                    "(initial)"
                } else {
                    "(outside the console)"
                };
                history.record(&text, author, "config found at start")?;
            }
            *current_hash.lock() = hash;
        }
        Err(e) => log::warn!("config store not readable yet: {e}"),
    }
    if config.users.is_empty() {
        log::warn!("no [[users]] in the console config: nobody can log in");
    }
    let app = Arc::new(api::App {
        auth: auth::Auth::new(config.users.clone(), config.session.clone()),
        validator: validate::Validator::new(&config.store),
        store,
        history,
        fleet: fleet.clone(),
        current_hash: current_hash.clone(),
        write_lock: tokio::sync::Mutex::new(()),
    });
    tokio::spawn(fleet.run(current_hash));
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    log::info!(
        "tidegate-console on http://{} editing {}",
        config.listen,
        app.store.describe()
    );
    axum::serve(
        listener,
        api::router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .await
    .map_err(|e| e.to_string())
}

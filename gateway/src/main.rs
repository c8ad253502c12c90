//! `tidegate`: run the gateway, or check a config file.

use clap::{Parser, Subcommand};

/// mimalloc: the request path allocates small, short-lived objects on several threads, where
/// glibc malloc spent about a tenth of the CPU time in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use pingora_core::apps::http_app::HttpServer;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;
use std::path::PathBuf;
use std::process::ExitCode;
use tidegate::admin::AdminApp;
use tidegate::config::{Config, Source, EMBEDDED_DEFAULT};
use tidegate::config_watch::ConfigWatch;
use tidegate::gateway::Gateway;
use tidegate::listener::Listener;
use tidegate::proxy::Proxy;

#[derive(Parser)]
#[command(name = "tidegate", version, about = "Tidegate API gateway")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Config file (TOML). Without it the embedded default config runs.
    #[arg(short = 'c', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Take over the listening sockets of a running tidegate (binary upgrade).
    #[arg(short = 'u', long)]
    upgrade: bool,
    /// Run in the background.
    #[arg(short = 'd', long)]
    daemon: bool,
    /// Check the config and exit (same as `tidegate check`).
    #[arg(short = 't', long)]
    test: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a config file; prints FILE:LINE:COLUMN: message for every problem found.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();

    let source = match (&cli.command, &cli.config) {
        (Some(Command::Check { file }), _) => return check(file),
        (None, Some(path)) if cli.test => return check(path),
        (None, Some(path)) => match Source::read_file(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => Source::new("embedded default", EMBEDDED_DEFAULT),
    };

    let gateway = match Gateway::start(source) {
        Ok(g) => g,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let snapshot = gateway.snapshot();
    let server_config = &snapshot.config.server;

    let conf = ServerConf {
        threads: server_config.threads,
        upgrade_sock: server_config.upgrade_sock.clone(),
        pid_file: server_config.pid_file.clone(),
        grace_period_seconds: Some(server_config.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(server_config.graceful_shutdown_timeout_seconds),
        daemon: cli.daemon,
        // One single-threaded runtime per worker thread: connections stay on the thread that
        // accepted them, with no cross-thread scheduling on the request path.
        work_stealing: false,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let mut proxy = Service::new(
        "tidegate proxy".to_string(),
        Listener::new(pingora_proxy::http_proxy(
            &server.configuration,
            Proxy::new(gateway.clone()),
        )),
    );
    for addr in server_config.listen_addrs() {
        proxy.add_tcp(addr);
    }

    let mut admin = Service::new(
        "tidegate admin".to_string(),
        HttpServer::new_app(AdminApp::new(gateway.clone())),
    );
    admin.add_tcp(snapshot.config.admin.listen.get_ref());
    // The admin listener answers health checks and config changes; one thread is plenty and
    // keeps it off the proxy's threads.
    admin.threads = Some(1);

    let watch = background_service(
        "config watch",
        ConfigWatch {
            gateway: gateway.clone(),
            path: cli.config.clone(),
        },
    );

    log::info!(
        "tidegate {} serving config version {} ({}) from {}",
        env!("CARGO_PKG_VERSION"),
        snapshot.version,
        snapshot.hash,
        snapshot.source.origin
    );
    drop(snapshot);
    server.add_service(proxy);
    server.add_service(admin);
    server.add_service(watch);
    server.run_forever();
}

fn check(file: &std::path::Path) -> ExitCode {
    let source = match Source::read_file(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match Config::parse(&source) {
        Ok(config) => {
            println!(
                "{}: ok ({} routes, {} services)",
                source.origin,
                config.routes.len(),
                config.services.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}

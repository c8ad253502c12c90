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
use tidegate::edge::Edge;
use tidegate::gateway::Gateway;
use tidegate::lifecycle::Lifecycle;
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
    /// Replace the running gateway (found through `server.pid_file` of the -c config) with
    /// this binary, without refusing a connection; waits until the old process has exited.
    /// Take this host out of the load balancer's rotation before maintenance: `/readyz`
    /// answers 503 while requests are still served (`--undo` puts it back). Reads the admin
    /// address and token from the -c config.
    Drain {
        #[arg(long)]
        undo: bool,
    },
    /// Translate ingress-nginx manifests (Ingresses with their annotations, IngressClasses,
    /// and the Services they name) into a Tidegate config, to OUTPUT or stdout; the report of
    /// what maps, what differs and what is not translated goes to stderr.
    ImportIngress {
        /// YAML files (several documents each, `List`s too).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the config here instead of stdout.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
        /// Only Ingresses of this class (default: every Ingress).
        #[arg(long)]
        ingress_class: Option<String>,
        /// Where the TLS Secrets' files are mounted (SECRET/tls.crt and SECRET/tls.key).
        #[arg(long, default_value = "/etc/tidegate/tls")]
        tls_dir: String,
        /// Exit with 1 when anything is not translated.
        #[arg(long)]
        strict: bool,
    },
    /// The Ingress controller (control plane): watches the Ingresses of its class, translates
    /// them as import-ingress does and writes the config into a Secret the gateways mount.
    /// One replica leads (a Lease); the others wait.
    IngressController {
        /// The namespace of the config Secret and the Lease.
        #[arg(long, default_value = "default")]
        namespace: String,
        /// The Secret the gateways mount as their config directory (tidegate.toml, the
        /// report in report.txt, and NAMESPACE.SECRET.crt/.key for the TLS Secrets named).
        #[arg(long)]
        config_secret: String,
        /// A file with the gateways' own sections ([server], [admin], …), put first.
        #[arg(long)]
        base: Option<PathBuf>,
        /// The class whose Ingresses are translated (and those without a class when the
        /// IngressClass of this name is the default one).
        #[arg(long, default_value = "tidegate")]
        ingress_class: String,
        #[arg(long, default_value = "/etc/tidegate/tls")]
        tls_dir: String,
        /// This replica's identity in the Lease (default: $POD_NAME, else the host name).
        #[arg(long)]
        identity: Option<String>,
        #[arg(long, default_value_t = 15)]
        lease_seconds: u64,
        /// The API server (default: in the cluster).
        #[arg(long)]
        api_server: Option<String>,
        #[arg(long)]
        token_file: Option<String>,
        #[arg(long)]
        ca_file: Option<String>,
        /// NAMESPACE/NAME of the gateways' Service: its load balancer's addresses (else its
        /// external IPs) are written to the Ingresses' status.loadBalancer and the Gateways'
        /// status.addresses (what `kubectl get ingress` and external-dns read).
        #[arg(long)]
        publish_service: Option<String>,
        /// Or these addresses (IPs or host names, comma-separated), e.g. a cloud load
        /// balancer outside the cluster.
        #[arg(long)]
        publish_status_address: Option<String>,
    },
    Upgrade {
        /// Start the new process as a daemon (as under systemd's Type=forking).
        #[arg(long)]
        daemon: bool,
        /// Append the new process's output to this file.
        #[arg(long)]
        log: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();

    let source = match (&cli.command, &cli.config) {
        (Some(Command::Check { file }), _) => return check(file),
        (
            Some(Command::ImportIngress {
                files,
                output,
                ingress_class,
                tls_dir,
                strict,
            }),
            _,
        ) => {
            let options = tidegate::ingress::Options {
                class: ingress_class.clone(),
                tls_dir: tls_dir.clone(),
                tls_files: tidegate::ingress::TlsFiles::PerSecret,
                kubernetes_section: true,
            };
            return import_ingress(files, output.as_deref(), &options, *strict);
        }
        (Some(Command::IngressController { .. }), _) => {
            let Some(Command::IngressController {
                namespace,
                config_secret,
                base,
                ingress_class,
                tls_dir,
                identity,
                lease_seconds,
                api_server,
                token_file,
                ca_file,
                publish_service,
                publish_status_address,
            }) = cli.command
            else {
                unreachable!()
            };
            let base = match base.map(std::fs::read_to_string).transpose() {
                Ok(b) => b.unwrap_or_default(),
                Err(e) => {
                    eprintln!("--base: {e}");
                    return ExitCode::from(2);
                }
            };
            let publish = match tidegate::controller::Publish::parse(
                publish_service.as_deref(),
                publish_status_address.as_deref(),
            ) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let identity = identity
                .or_else(|| std::env::var("POD_NAME").ok())
                .or_else(|| {
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_else(|| format!("pid-{}", std::process::id()));
            let options = tidegate::controller::Options {
                kubernetes: tidegate::config::KubernetesConfig {
                    api_server: api_server.map(|u| toml::Spanned::new(0..0, u)),
                    token_file,
                    ca_file,
                    ..Default::default()
                },
                namespace,
                config_secret,
                base,
                ingress_class,
                tls_dir,
                identity,
                lease_duration: std::time::Duration::from_secs(lease_seconds.max(3)),
                publish,
            };
            return run_controller(options);
        }
        (Some(Command::Upgrade { daemon, log }), Some(path)) => {
            return upgrade(path, *daemon, log.clone())
        }
        (Some(Command::Drain { undo }), Some(path)) => return drain(path, *undo),
        (Some(Command::Upgrade { .. } | Command::Drain { .. }), None) => {
            eprintln!("this command needs -c FILE (the running gateway's config)");
            return ExitCode::from(2);
        }
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

    raise_fd_limit();
    let gateway = match Gateway::start(source) {
        Ok(g) => g,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &cli.config {
        gateway.set_config_path(path.clone());
    }
    // Discovered endpoints (and a shared config from Nacos) before the first request.
    tidegate::nacos::prefetch(&gateway, std::time::Duration::from_secs(3));
    // Endpoints by DNS name resolved before the first request too.
    tidegate::resolver::prefetch(&gateway, std::time::Duration::from_secs(3));
    // And the pods of the Kubernetes Services the config binds.
    tidegate::kubernetes::prefetch(&gateway, std::time::Duration::from_secs(3));
    let snapshot = gateway.snapshot();
    let server_config = &snapshot.config.server;

    let conf = ServerConf {
        threads: server_config.threads,
        upgrade_sock: server_config.upgrade_sock.clone(),
        pid_file: server_config.pid_file.clone(),
        // The grace period, plus the linger of TLS tunnels after a hand-off; the process
        // exits as soon as nothing is left open, so this is only a bound.
        grace_period_seconds: Some(server_config.shutdown_window_seconds()),
        graceful_shutdown_timeout_seconds: Some(server_config.graceful_shutdown_timeout_seconds),
        daemon: cli.daemon,
        // One single-threaded runtime per worker thread: connections stay on the thread that
        // accepted them, with no cross-thread scheduling on the request path.
        work_stealing: false,
        upstream_keepalive_pool_size: server_config.upstream_keepalive_pool_size,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    // The new process of an upgrade listens for tunnels before it takes the listeners, so the
    // old one can hand them over as soon as it lets go.
    let handover_path = server_config
        .websocket_handover
        .then(|| tidegate::tunnel::handover::socket_path(&server_config.upgrade_sock));
    let adopt_from = match (&handover_path, cli.upgrade) {
        (Some(path), true) => match tidegate::tunnel::handover::bind(path) {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::error!(
                    "cannot listen for tunnel hand-over on {}: {e}",
                    path.display()
                );
                None
            }
        },
        _ => None,
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    let phases = server.watch_execution_phase();
    // The runtimes get Pingora's graceful_shutdown_timeout (none on SIGINT), plus a margin.
    tidegate::lifecycle::watch_runtime_shutdown(
        server.watch_execution_phase(),
        gateway.clone(),
        std::time::Duration::from_secs(server_config.graceful_shutdown_timeout_seconds + 2),
    );
    server.bootstrap();
    if !cli.daemon {
        // In daemon mode Pingora writes it; `tidegate upgrade` finds the process through it.
        if let Err(e) = std::fs::write(&server_config.pid_file, format!("{}\n", std::process::id()))
        {
            log::warn!("cannot write pid file {}: {e}", server_config.pid_file);
        }
    }

    tidegate::upstream::pool::set_limit(server_config.upstream_keepalive_pool_size);
    let mut http = pingora_proxy::http_proxy(&server.configuration, Proxy::new(gateway.clone()));
    // HTTP/2 with prior knowledge on the plain listeners (the edge hands such connections on).
    let mut options = pingora_core::apps::HttpServerOptions::default();
    options.h2c = true;
    http.server_options = Some(options);
    let (proxy_plain, proxy_tls): (Vec<std::net::SocketAddr>, Vec<std::net::SocketAddr>) =
        server_config
            .proxy_protocol
            .iter()
            .filter_map(|a| a.get_ref().parse().ok())
            .partition(|a: &std::net::SocketAddr| {
                server_config.listen_addrs().any(|l| l.parse() == Ok(*a))
            });
    let mut proxy = Service::new(
        "tidegate proxy".to_string(),
        Edge::new(http, gateway.clone(), proxy_plain),
    );
    use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
    for addr in server_config.listen_addrs() {
        // No buffers in Pingora's socket stream: the edge reads each request itself, and a
        // silent or idle connection then holds none at all.
        proxy.add_listener(ListenerConfig::tcp(addr).l4_buffer(L4BufferSettings::new(0, 0)));
    }
    for addr in server_config.tls_listen_addrs() {
        let settings = match tidegate::tls::listener_settings(&gateway, &snapshot.config.tls) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        };
        // OpenSSL reads a record header and then its body: a small read buffer saves the
        // second system call per record.
        proxy.add_listener(
            ListenerConfig::tcp(addr)
                .tls(settings)
                .l4_buffer(L4BufferSettings::new(4096, 0)),
        );
    }
    if !proxy_tls.is_empty() {
        proxy.endpoints().set_pre_tls_callback(std::sync::Arc::new(
            tidegate::tls::pre_tls::ProxyHeader { addrs: proxy_tls },
        ));
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

    let lifecycle = background_service(
        "lifecycle",
        Lifecycle {
            gateway: gateway.clone(),
            phases: parking_lot::Mutex::new(Some(phases)),
            handover_path,
            adopt_from: parking_lot::Mutex::new(adopt_from),
            grace: std::time::Duration::from_secs(server_config.grace_period_seconds),
            linger: std::time::Duration::from_secs(
                server_config.shutdown_window_seconds() - server_config.grace_period_seconds,
            ),
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
    server.add_service(lifecycle);
    server.add_service(background_service(
        "nacos",
        tidegate::nacos::NacosRunner {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "dns",
        tidegate::resolver::DnsRunner {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "kubernetes",
        tidegate::kubernetes::KubernetesRunner {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "kubernetes config secret",
        tidegate::kubernetes::config_secret::ConfigSecretRunner {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "upstream idle connections",
        tidegate::upstream::pool::Sweeper {
            gateway: gateway.clone(),
        },
    ));
    server.add_service(background_service(
        "health checks",
        tidegate::health::HealthChecks {
            gateway: gateway.clone(),
        },
    ));
    server.run_forever();
}

/// A gateway holds two descriptors per WebSocket tunnel; the usual soft limit of 1024 would
/// cap it near 500 tunnels. Raise the soft limit to the hard one, as nginx's
/// worker_rlimit_nofile would.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("cannot raise the open-file limit from {soft}: {e}");
            }
        }
    }
}

fn upgrade(config: &std::path::Path, daemon: bool, log: Option<PathBuf>) -> ExitCode {
    let source = match Source::read_file(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // The new process must accept this config: check it with this (the new) binary before
    // the running one is touched.
    let snapshot = match tidegate::snapshot::Snapshot::check(source) {
        Ok(s) => s,
        Err(errors) => {
            eprintln!(
                "{errors}\nupgrade: the config is refused; the running gateway keeps serving"
            );
            return ExitCode::from(1);
        }
    };
    let server = &snapshot.config.server;
    let listen = server
        .listen_addrs()
        .chain(std::iter::once(
            snapshot.config.admin.listen.get_ref().as_str(),
        ))
        .filter_map(|a| a.parse().ok())
        .collect();
    tidegate::upgrade::run(tidegate::upgrade::Options {
        config: config.to_path_buf(),
        listen,
        pid_file: server.pid_file.clone(),
        upgrade_sock: server.upgrade_sock.clone(),
        grace_period_seconds: server.grace_period_seconds,
        lingers: !server.tls_listen.is_empty() && server.tls_tunnel_linger_seconds > 0,
        graceful_shutdown_timeout_seconds: server.graceful_shutdown_timeout_seconds,
        daemon,
        log,
    })
}

fn drain(config: &std::path::Path, undo: bool) -> ExitCode {
    let parsed = match Source::read_file(config).and_then(|s| Config::parse(&s)) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let admin = &parsed.admin;
    let method = if undo { "DELETE" } else { "POST" };
    match tidegate::admin::call(
        admin.listen.get_ref(),
        admin.token.as_deref(),
        method,
        "/api/drain",
    ) {
        Ok((200, body)) => {
            println!("{}", body.trim());
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("drain: the admin API answered {status}: {}", body.trim());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("drain: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_controller(options: tidegate::controller::Options) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(tidegate::controller::run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn import_ingress(
    files: &[PathBuf],
    output: Option<&std::path::Path>,
    options: &tidegate::ingress::Options,
    strict: bool,
) -> ExitCode {
    let mut texts = Vec::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => texts.push((file.display().to_string(), text)),
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                return ExitCode::from(2);
            }
        }
    }
    let imported = match tidegate::ingress::import(&texts, options) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    eprint!(
        "{}",
        imported.report.render(imported.routes, imported.services)
    );
    let written = match output {
        Some(path) => std::fs::write(path, &imported.config),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(imported.config.as_bytes())
        }
    };
    if let Err(e) = written {
        eprintln!("cannot write the config: {e}");
        return ExitCode::from(2);
    }
    if strict && imported.report.unsupported().next().is_some() {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn check(file: &std::path::Path) -> ExitCode {
    let source = match Source::read_file(file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let origin = source.origin.clone();
    // The same compile an apply runs (plugins, regexes, secrets), on throwaway state.
    match tidegate::snapshot::Snapshot::check(source) {
        Ok(snapshot) => {
            println!(
                "{origin}: ok ({} routes, {} services)",
                snapshot.router.routes().len(),
                snapshot.services.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}

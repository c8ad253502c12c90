//! The DNS resolver of endpoint names (`addr = "api.partner.example:443"`), off the request
//! path: one task per name the serving config uses asks for its A (and AAAA) records, hands
//! a good answer to the gateway (`Gateway::resolved`, which swaps the services' endpoints in
//! place) and asks again when the answer's TTL runs out — never sooner than
//! `[dns] min_ttl_seconds`, never later than `max_ttl_seconds`. A resolution that fails or
//! answers no address keeps the last addresses serving, is counted
//! (`tidegate_dns_resolutions_total{result="error"|"empty"}`) and is tried again after 1 s,
//! 2 s, 4 s … (at most 30 s, and never more than `max_ttl_seconds`).
//!
//! At start [`prefetch`] resolves every name once (bounded) before the listeners open, so a
//! gateway serves its named endpoints from its first request; a name that does not resolve
//! then leaves its entries without endpoints (502, logged) until it does. `[dns]` changes
//! apply at once: the resolver is made again and every name asked anew.
//!
//! The resolver is hickory's (UDP with TCP fallback; the system's `/etc/resolv.conf` and
//! `/etc/hosts` unless `[dns] servers` names the servers). Its own cache is off: the TTL
//! schedule here decides when a name is asked again.

use crate::config::DnsConfig;
use crate::gateway::Gateway;
use async_trait::async_trait;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How often the service looks for names that a new config uses.
const SYNC: Duration = Duration::from_millis(100);
/// The first retry after a failed resolution; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Makes a resolver for `config`.
pub fn resolver(config: &DnsConfig) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if config.servers.is_empty() {
        TokioResolver::builder(provider).map_err(|e| format!("dns: the system resolver: {e}"))?
    } else {
        let servers = config
            .servers
            .iter()
            .filter_map(|s| crate::config::dns::parse_server(s.get_ref()).ok())
            .map(|addr| {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
            })
            .collect();
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            provider,
        );
        builder.options_mut().use_hosts_file = ResolveHosts::Never;
        builder
    };
    let opts = builder.options_mut();
    opts.timeout = Duration::from_millis(*config.timeout_ms.get_ref());
    opts.attempts = 2;
    opts.ip_strategy = if config.ipv6 {
        LookupIpStrategy::Ipv4AndIpv6
    } else {
        LookupIpStrategy::Ipv4Only
    };
    opts.cache_size = 0;
    opts.positive_min_ttl = Some(Duration::from_secs(*config.min_ttl_seconds.get_ref()));
    opts.positive_max_ttl = Some(Duration::from_secs(*config.max_ttl_seconds.get_ref()));
    opts.try_tcp_on_error = true;
    builder.build().map_err(|e| format!("dns: {e}"))
}

/// How a resolution ended.
enum Outcome {
    /// The addresses and how long they may be used.
    Addresses(Vec<IpAddr>, Duration),
    /// No address (no such name, or no A/AAAA record).
    Empty(String),
    Error(String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Addresses(..) => "ok",
            Outcome::Empty(_) => "empty",
            Outcome::Error(_) => "error",
        }
    }
}

async fn resolve(resolver: &TokioResolver, name: &str, config: &DnsConfig) -> Outcome {
    // hickory bounds each query; this bounds the whole (servers × attempts × A and AAAA).
    let servers = config.servers.len().max(1) as u32;
    let bound = Duration::from_millis(*config.timeout_ms.get_ref()) * (4 * servers)
        + Duration::from_secs(1);
    let Ok(answer) = tokio::time::timeout(bound, resolver.lookup_ip(name)).await else {
        return Outcome::Error(format!("no answer within {bound:?}"));
    };
    match answer {
        Ok(lookup) => {
            let addresses: Vec<IpAddr> = lookup.iter().collect();
            if addresses.is_empty() {
                return Outcome::Empty("an answer without an address".into());
            }
            let ttl = lookup
                .valid_until()
                .saturating_duration_since(Instant::now());
            Outcome::Addresses(addresses, ttl)
        }
        Err(e) if e.is_no_records_found() => Outcome::Empty(e.to_string()),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// The delay before asking for a name again after `failures` failures in a row.
fn retry_after(failures: u32, config: &DnsConfig) -> Duration {
    let cap = RETRY_MAX.min(Duration::from_secs(*config.max_ttl_seconds.get_ref()));
    RETRY_FIRST
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(cap)
        .max(Duration::from_millis(100))
}

/// How long a good answer is used: its TTL within the configured bounds.
fn use_for(ttl: Duration, config: &DnsConfig) -> Duration {
    ttl.clamp(
        Duration::from_secs(*config.min_ttl_seconds.get_ref()),
        Duration::from_secs(*config.max_ttl_seconds.get_ref()),
    )
}

/// Resolves `name` once and hands the outcome to the gateway. Returns the delay before the
/// next resolution and whether this one failed.
async fn resolve_once(
    gateway: &Gateway,
    resolver: &TokioResolver,
    name: &str,
    config: &DnsConfig,
    failures: u32,
) -> (Duration, bool) {
    let outcome = resolve(resolver, name, config).await;
    crate::metrics::get()
        .dns_resolutions
        .with_label_values(&[name, outcome.label()])
        .inc();
    match outcome {
        Outcome::Addresses(addresses, ttl) => {
            let delay = use_for(ttl, config);
            gateway.resolved(name, addresses, Instant::now() + delay);
            (delay, false)
        }
        Outcome::Empty(why) | Outcome::Error(why) => {
            let delay = retry_after(failures + 1, config);
            let kept = gateway
                .discovery()
                .dns
                .failed(name, why.clone(), Instant::now() + delay);
            if kept {
                log::warn!(
                    "dns: {name} did not resolve ({why}); its last addresses keep serving, next try in {delay:?}"
                );
            } else {
                log::error!(
                    "dns: {name} did not resolve ({why}); the endpoints configured by this name have no address (requests only they could take get 502), next try in {delay:?}"
                );
            }
            (delay, true)
        }
    }
}

/// Follows one name for as long as the config uses it.
async fn follow(
    gateway: Arc<Gateway>,
    resolver: Arc<TokioResolver>,
    name: Arc<str>,
    config: DnsConfig,
) {
    // A name already known (resolved at start, or before a [dns] change) waits for its turn.
    if let Some(at) = gateway.discovery().dns.due(&name) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
    }
    let mut failures = 0u32;
    loop {
        let (delay, failed) = resolve_once(&gateway, &resolver, &name, &config, failures).await;
        failures = if failed {
            failures.saturating_add(1)
        } else {
            0
        };
        tokio::time::sleep(delay).await;
    }
}

/// Resolves every name of the serving config once, at most `limit` in all, before the
/// listeners open.
pub fn prefetch(gateway: &Arc<Gateway>, limit: Duration) {
    let snapshot = gateway.snapshot();
    let names = crate::discovery::dns::names_of(snapshot.services.values());
    if names.is_empty() {
        return;
    }
    let config = snapshot.config.dns.clone();
    drop(snapshot);
    crate::discovery::before_serving("dns", async {
        let resolver = match resolver(&config) {
            Ok(r) => r,
            Err(e) => {
                log::error!("{e}");
                return;
            }
        };
        let all = names.iter().map(|name| {
            let (gateway, resolver, config) = (gateway.clone(), &resolver, &config);
            async move { resolve_once(&gateway, resolver, name, config, 0).await }
        });
        if tokio::time::timeout(limit, futures_util::future::join_all(all))
            .await
            .is_err()
        {
            log::warn!("dns: not every endpoint name resolved within {limit:?} at start");
        }
    });
}

/// The background service: keeps one task per name of the serving config.
pub struct DnsRunner {
    pub gateway: Arc<Gateway>,
}

#[async_trait]
impl BackgroundService for DnsRunner {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut config: Option<DnsConfig> = None;
        let mut resolver: Option<Arc<TokioResolver>> = None;
        let mut tasks: HashMap<Arc<str>, JoinHandle<()>> = HashMap::new();
        let mut ticker = tokio::time::interval(SYNC);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = ticker.tick() => {}
            }
            let snapshot = self.gateway.snapshot();
            let wanted: HashSet<Arc<str>> =
                crate::discovery::dns::names_of(snapshot.services.values());
            self.gateway.discovery().dns.retain(&wanted);
            if config.as_ref() != Some(&snapshot.config.dns) {
                // Other servers or bounds: every name is asked again with the new resolver.
                for (_, task) in tasks.drain() {
                    task.abort();
                }
                if config.is_some() {
                    for name in &wanted {
                        self.gateway.discovery().dns.reset_due(name);
                    }
                }
                config = Some(snapshot.config.dns.clone());
                resolver = match self::resolver(&snapshot.config.dns) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(e) => {
                        log::error!("{e}");
                        None
                    }
                };
            }
            let (Some(resolver), Some(config)) = (&resolver, &config) else {
                continue;
            };
            tasks.retain(|name, task| {
                let keep = wanted.contains(name) && !task.is_finished();
                if !keep {
                    task.abort();
                }
                keep
            });
            for name in wanted {
                tasks.entry(name.clone()).or_insert_with(|| {
                    tokio::spawn(follow(
                        self.gateway.clone(),
                        resolver.clone(),
                        name,
                        config.clone(),
                    ))
                });
            }
        }
        for (_, task) in tasks.drain() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_used_within_the_ttl_bounds_and_failures_back_off() {
        let config = DnsConfig::default();
        assert_eq!(use_for(Duration::ZERO, &config), Duration::from_secs(5));
        assert_eq!(
            use_for(Duration::from_secs(60), &config),
            Duration::from_secs(60)
        );
        assert_eq!(
            use_for(Duration::from_secs(86_400), &config),
            Duration::from_secs(300)
        );
        let waits: Vec<u64> = (1..=7).map(|n| retry_after(n, &config).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(retry_after(u32::MAX, &config), Duration::from_secs(30));
        let short = DnsConfig {
            max_ttl_seconds: toml::Spanned::new(0..0, 3),
            ..DnsConfig::default()
        };
        assert_eq!(retry_after(5, &short), Duration::from_secs(3));
    }
}

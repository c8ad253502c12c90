//! What a config change does to open tunnels: a tunnel is closed only when its own route is
//! gone or its own endpoint left the route's service, and then as that route's
//! `on_route_change` says (keep, drain over the window, or close at once). Nothing else a
//! reload does closes a tunnel.

use super::{CloseReason, Command, Registry};
use crate::config::TunnelPolicy;
use crate::snapshot::Snapshot;
use std::sync::Arc;
use std::time::Duration;

/// A tunnel is closed only when its route is gone or its endpoint left the route's
/// service, and then as that route's policy says. Nothing else closes a tunnel.
pub fn close_orphaned(registry: &Arc<Registry>, old: &Snapshot, new: &Snapshot) {
    let mut drains: Vec<(Duration, Vec<u64>)> = Vec::new();
    for (id, info) in registry.list() {
        let (orphaned, policy, window) = match new.router.get(&info.route) {
            Some(route) => {
                let kept = route.service().is_some_and(|s| {
                    s.members()
                        .endpoints
                        .iter()
                        .any(|e| e.addr == info.endpoint)
                });
                (!kept, route.on_route_change, route.drain_window)
            }
            None => match old.router.get(&info.route) {
                Some(route) => (true, route.on_route_change, route.drain_window),
                None => (true, TunnelPolicy::default(), Duration::from_secs(30)),
            },
        };
        if !orphaned || policy == TunnelPolicy::Keep || !registry.begin_close(id) {
            continue;
        }
        match policy {
            TunnelPolicy::Keep => {}
            TunnelPolicy::Close => {
                registry.send(id, Command::Close(1001));
            }
            TunnelPolicy::Drain => match drains.iter_mut().find(|(w, _)| *w == window) {
                Some((_, ids)) => ids.push(id),
                None => drains.push((window, vec![id])),
            },
        }
    }
    for (window, ids) in drains {
        spread_closes(registry.clone(), ids, window);
    }
}

/// After endpoints changed in place (a registry's or the API server's answer, no new
/// snapshot): tunnels whose endpoint left their route's service are closed as the route says.
pub fn close_departed(registry: &Arc<Registry>, serving: &Snapshot) {
    close_orphaned(registry, serving, serving);
}

/// Closes the tunnels one by one at even intervals over `window`, so their clients come
/// back gradually instead of all at once.
pub fn spread_closes(registry: Arc<Registry>, ids: Vec<u64>, window: Duration) {
    if ids.is_empty() {
        return;
    }
    let step = window / ids.len() as u32;
    let task = async move {
        let start = tokio::time::Instant::now();
        for (i, id) in ids.into_iter().enumerate() {
            tokio::time::sleep_until(start + step * i as u32).await;
            registry.send(id, Command::Close(1001));
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(task);
        }
        Err(_) => {
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .map(|rt| rt.block_on(task))
            });
        }
    }
}

/// `tidegate_websocket_tunnels_open` and `…_closed_total` at zero for every proxying route,
/// so a fresh gateway's dashboards show 0 rather than "no data".
pub fn declare_metrics(snapshot: &Snapshot) {
    let m = crate::metrics::get();
    for route in snapshot.router.routes() {
        if route.service().is_none() {
            continue;
        }
        m.tunnels_open.with_label_values(&[&route.name]);
        for reason in CloseReason::ALL {
            m.tunnels_closed
                .with_label_values(&[&route.name, reason.as_str()]);
        }
    }
}

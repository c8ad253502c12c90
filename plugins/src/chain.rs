//! A route's plugins in phase order, and the loops that run them: the gateway calls one
//! method per phase and never iterates plugins itself.

use crate::{Plugin, Reply, RequestState};
use bytes::Bytes;
use pingora_http::{RequestHeader, ResponseHeader};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Chain {
    plugins: Vec<Arc<dyn Plugin>>,
    /// The most body bytes any plugin of the chain wants to see before proxying.
    body_limit: usize,
    /// The plugins (indices into `plugins`) that look at response bodies, so that a body
    /// piece meets only those.
    response_body_plugins: Vec<usize>,
}

impl Chain {
    /// Orders `plugins` by phase (stable for equal kinds, so listing order breaks ties).
    pub fn new(mut plugins: Vec<Arc<dyn Plugin>>) -> Chain {
        plugins.sort_by_key(|p| p.order());
        let body_limit = plugins.iter().map(|p| p.body_limit()).max().unwrap_or(0);
        let response_body_plugins = (0..plugins.len())
            .filter(|&i| plugins[i].inspects_response_body())
            .collect();
        Chain {
            plugins,
            body_limit,
            response_body_plugins,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    /// The per-request state this chain's plugins share.
    pub fn start(&self, route: Arc<str>, client_ip: String) -> RequestState {
        RequestState::new(route, client_ip, self.plugins.len())
    }

    /// `on_request` of each plugin in order; the first refusal answers the request.
    pub async fn request(
        &self,
        req: &RequestHeader,
        state: &mut RequestState,
    ) -> Result<(), Reply> {
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin
                .on_request(req, &mut state.ctx(i))
                .await
                .map_err(|reply| refused(plugin.as_ref(), reply))?;
        }
        Ok(())
    }

    /// How many body bytes must be read before the body phase (0: no plugin looks).
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// `on_request_body` of each plugin that asked for the body.
    pub async fn request_body(
        &self,
        req: &RequestHeader,
        body: Option<&[u8]>,
        state: &mut RequestState,
    ) -> Result<(), Reply> {
        for (i, plugin) in self.plugins.iter().enumerate() {
            if plugin.body_limit() == 0 {
                continue;
            }
            plugin
                .on_request_body(req, body, &mut state.ctx(i))
                .await
                .map_err(|reply| refused(plugin.as_ref(), reply))?;
        }
        Ok(())
    }

    pub fn upstream_request(&self, req: &mut RequestHeader, state: &mut RequestState) {
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin.on_upstream_request(req, &mut state.ctx(i));
        }
    }

    /// `on_upstream_response` of each plugin in order; the first refusal answers instead.
    pub fn upstream_response(
        &self,
        resp: &ResponseHeader,
        state: &mut RequestState,
    ) -> Result<(), Reply> {
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin
                .on_upstream_response(resp, &mut state.ctx(i))
                .map_err(|reply| refused(plugin.as_ref(), reply))?;
        }
        Ok(())
    }

    /// Whether [`Self::response_body`] has anything to do.
    pub fn inspects_response_bodies(&self) -> bool {
        !self.response_body_plugins.is_empty()
    }

    /// `on_response_body` of each plugin that looks at bodies, in order; the first `Err`
    /// cuts the response (see [`Plugin::on_response_body`]).
    pub fn response_body(
        &self,
        body: &mut Option<Bytes>,
        end: bool,
        state: &mut RequestState,
    ) -> Result<(), String> {
        for &i in &self.response_body_plugins {
            let plugin = &self.plugins[i];
            plugin
                .on_response_body(body, end, &mut state.ctx(i))
                .map_err(|why| format!("{}: {why}", plugin.name()))?;
        }
        Ok(())
    }

    pub fn response(&self, resp: &mut ResponseHeader, state: &mut RequestState) {
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin.on_response(resp, &mut state.ctx(i));
        }
    }

    pub fn log(&self, status: u16, state: &mut RequestState) {
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin.on_log(status, &mut state.ctx(i));
        }
    }
}

/// `tidegate_plugin_refusals_total`: which plugin answered a request itself, and how.
fn refused(plugin: &dyn Plugin, reply: Reply) -> Reply {
    crate::metrics::count_refusal(plugin.name(), reply.status);
    reply
}

#[cfg(test)]
mod tests {
    use crate::testing;

    #[tokio::test]
    async fn runs_in_phase_order_and_stops_at_the_first_refusal() {
        // Listed limits-first, but ip rules run first whatever the listing order.
        let chain = testing::chain(&[
            "type = \"request-block\"\npaths = [\"^/blocked\"]",
            "type = \"ip-restriction\"\ndeny = [\"10.0.0.0/8\"]",
        ]);
        let names: Vec<u16> = chain.plugins().iter().map(|p| p.order()).collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "{names:?}");
        let req = testing::request("GET", "/blocked", &[]);
        let mut state = chain.start("r".into(), "10.1.2.3".into());
        let reply = chain.request(&req, &mut state).await.unwrap_err();
        assert_eq!(reply.status, 403);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        assert_eq!(
            chain.request(&req, &mut state).await.unwrap_err().status,
            403
        );
        let ok = testing::request("GET", "/fine", &[]);
        let mut state = chain.start("r".into(), "192.0.2.1".into());
        assert!(chain.request(&ok, &mut state).await.is_ok());
    }
}

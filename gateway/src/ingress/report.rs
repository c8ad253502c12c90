//! What an import says about each Ingress: what maps as it was, what maps with a difference
//! an operator must know, and what is not translated — by annotation or field name, never
//! silently dropped.

use std::fmt::Write as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Maps,
    Differs,
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Line {
    pub verdict: Verdict,
    /// `namespace/name` of the Ingress (or another object) it is about.
    pub object: String,
    /// The annotation (without its `nginx.ingress.kubernetes.io/` prefix) or the field.
    pub what: String,
    pub note: String,
}

/// How one route stands with one of Tidegate's Gateways, for its status conditions.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteStatus {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    /// `(namespace, name, sectionName)` of the Gateway.
    pub parent: (String, String, Option<String>),
    /// Accepted: a listener of the Gateway takes it (else why not).
    pub accepted: Result<(), String>,
    /// ResolvedRefs: every backendRef is a Service it may use (else why not).
    pub resolved: Result<(), String>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// The routes' standing with Tidegate's Gateways (the controller writes their status).
    pub route_statuses: Vec<RouteStatus>,
    /// `namespace/name` of the Gateways and the names of the GatewayClasses translated.
    pub gateways: Vec<(String, String)>,
    pub gateway_classes: Vec<String>,
    pub lines: Vec<Line>,
    /// `namespace/name` of the Ingresses translated (of the class asked for).
    pub ingresses: Vec<String>,
    /// HTTPRoutes and GRPCRoutes attached to Tidegate's Gateways.
    pub gateway_routes: usize,
    pub skipped: Vec<String>,
}

impl Report {
    pub fn add(&mut self, verdict: Verdict, object: &str, what: &str, note: impl Into<String>) {
        self.lines.push(Line {
            verdict,
            object: object.to_string(),
            what: what.to_string(),
            note: note.into(),
        });
    }

    pub fn unsupported(&self) -> impl Iterator<Item = &Line> {
        self.lines
            .iter()
            .filter(|l| l.verdict == Verdict::Unsupported)
    }

    /// The report as the gateways read it (`report.json`): what is not translated and what
    /// differs, each `{object, what, note}`.
    pub fn json(&self) -> serde_json::Value {
        let group = |verdict| {
            let mut lines: Vec<&Line> =
                self.lines.iter().filter(|l| l.verdict == verdict).collect();
            lines.sort();
            lines.dedup();
            serde_json::json!(lines
                .iter()
                .map(|l| serde_json::json!({"object": l.object, "what": l.what, "note": l.note}))
                .collect::<Vec<_>>())
        };
        serde_json::json!({
            "ingresses": self.ingresses.len(),
            "gateway_api_routes": self.gateway_routes,
            "unsupported": group(Verdict::Unsupported),
            "differs": group(Verdict::Differs),
        })
    }

    /// The report as printed to stderr: a summary, then the three groups.
    pub fn render(&self, routes: usize, services: usize) -> String {
        let mut out = String::new();
        let gateway_api = match self.gateway_routes {
            0 => String::new(),
            n => format!(", {n} Gateway API route(s)"),
        };
        let _ = writeln!(
            out,
            "import-ingress: {} Ingress(es){gateway_api} → {routes} route(s), {services} service(s)",
            self.ingresses.len()
        );
        for skipped in &self.skipped {
            let _ = writeln!(out, "skipped: {skipped}");
        }
        let mut lines = self.lines.clone();
        lines.sort();
        lines.dedup();
        for (verdict, title) in [
            (Verdict::Maps, "maps"),
            (Verdict::Differs, "differs"),
            (Verdict::Unsupported, "unsupported (not translated)"),
        ] {
            let group: Vec<&Line> = lines.iter().filter(|l| l.verdict == verdict).collect();
            if group.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{title}:");
            for line in group {
                let _ = writeln!(out, "  {}: {}: {}", line.object, line.what, line.note);
            }
        }
        out
    }
}

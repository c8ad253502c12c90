#!/usr/bin/env python3
"""Writes the Grafana dashboards in conf/grafana/ from the compact panel lists below.

Edit here, run `python3 scripts/gen-dashboards.py`, commit the JSON. Every expression is
checked against a real Prometheus scraping a real gateway by gateway/tests/prometheus.rs,
so a metric renamed in code (or here) fails the tests.
"""
import json
import pathlib

RI = "$__rate_interval"
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

DASHBOARDS = {
    "fleet-overview": ("Tidegate / Fleet overview", [
        ("Requests per second by gateway", "timeseries", "reqps",
         [f"sum by (instance) (rate(tidegate_requests_total[{RI}]))"]),
        ("5xx ratio", "timeseries", "percentunit",
         [f'sum(rate(tidegate_requests_total{{status_class="5xx"}}[{RI}])) / sum(rate(tidegate_requests_total[{RI}]))']),
        ("Request latency p50 / p99", "timeseries", "s",
         [f"histogram_quantile(0.5, sum by (le) (rate(tidegate_request_duration_seconds_bucket[{RI}])))",
          f"histogram_quantile(0.99, sum by (le) (rate(tidegate_request_duration_seconds_bucket[{RI}])))"]),
        ("Open client connections", "timeseries", "short",
         ["sum by (instance) (tidegate_downstream_connections_open)"]),
        ("Open WebSocket tunnels", "timeseries", "short",
         ["sum by (instance) (tidegate_websocket_tunnels_open)"]),
        ("Config version by gateway", "stat", "none", ["tidegate_config_version"]),
        ("Draining gateways", "stat", "none", ["sum(tidegate_draining)"]),
        ("Versions running", "table", "none", ["count by (version) (tidegate_build_info)"]),
    ]),
    "routes-upstreams": ("Tidegate / Routes and upstreams", [
        ("Requests per second by route and status", "timeseries", "reqps",
         [f'sum by (route, status_class) (rate(tidegate_requests_total{{route=~"$route"}}[{RI}]))']),
        ("p99 latency by route", "timeseries", "s",
         [f'histogram_quantile(0.99, sum by (le, route) (rate(tidegate_request_duration_seconds_bucket{{route=~"$route"}}[{RI}])))']),
        ("Requests per second by upstream service", "timeseries", "reqps",
         [f'sum by (service) (rate(tidegate_requests_total{{service!=""}}[{RI}]))']),
        ("Upstream response p99 by service", "timeseries", "s",
         [f"histogram_quantile(0.99, sum by (le, service) (rate(tidegate_upstream_response_duration_seconds_bucket[{RI}])))"]),
        ("5xx per second by service", "timeseries", "reqps",
         [f'sum by (service) (rate(tidegate_requests_total{{status_class="5xx"}}[{RI}]))']),
        ("Usable endpoints by service (lowest across gateways)", "table", "none",
         ['min by (service) (tidegate_service_endpoints{state="usable"})']),
    ]),
    "websockets-upgrades": ("Tidegate / WebSockets and upgrades", [
        ("Open tunnels by route", "timeseries", "short",
         ["sum by (route) (tidegate_websocket_tunnels_open)"]),
        ("Tunnel closes per second by reason", "timeseries", "short",
         [f"sum by (reason) (rate(tidegate_websocket_tunnels_closed_total[{RI}]))"]),
        ("New client connections per second", "timeseries", "short",
         [f"sum by (instance) (rate(tidegate_downstream_connections_total[{RI}]))"]),
        ("Draining (upgrade or stop in progress)", "timeseries", "none",
         ["max by (instance) (tidegate_draining)"]),
    ]),
    "tenants-limits": ("Tidegate / Tenants and limits", [
        ("Limit decisions per second by tenant", "timeseries", "reqps",
         [f"sum by (tenant, decision) (rate(tidegate_limit_decisions_total[{RI}]))"]),
        ("Top tenants by rejections", "table", "reqps",
         [f'topk(10, sum by (tenant) (rate(tidegate_limit_decisions_total{{decision="rejected"}}[{RI}])))']),
        ("Top tenants by requests", "table", "reqps",
         [f"topk(10, sum by (tenant) (rate(tidegate_limit_decisions_total[{RI}])))"]),
        ("Redis up (cluster limits)", "stat", "none", ["min(tidegate_redis_up)"]),
        ("Checks decided locally because Redis failed", "timeseries", "short",
         [f"sum by (plugin) (rate(tidegate_limit_redis_fallback_total[{RI}]))"]),
        ("Flood-protection bans (1h)", "timeseries", "short",
         ["sum by (plugin) (increase(tidegate_cc_bans_total[1h]))"]),
        ("WAF matches per second by action", "timeseries", "reqps",
         [f"sum by (action) (rate(tidegate_waf_matches_total[{RI}]))"]),
        ("Top WAF rules (1h): CRS rule id or lite check, by route and action", "table", "short",
         ["topk(15, sum by (rule, route, action) (increase(tidegate_waf_matches_total[1h])))"]),
        ("WAF requests answered 503 (inspection queue full)", "timeseries", "reqps",
         [f"sum (rate(tidegate_waf_overload_total[{RI}]))"]),
        ("Requests answered by plugins (refusals) by plugin and status", "timeseries", "reqps",
         [f"sum by (plugin, status) (rate(tidegate_plugin_refusals_total[{RI}]))"]),
    ]),
    "config-discovery": ("Tidegate / Config and discovery", [
        ("Applied config version by gateway", "timeseries", "none", ["tidegate_config_version"]),
        ("Gateways per config hash (more than one row: the fleet disagrees)", "table", "none",
         ["count by (hash) (tidegate_config_info)"]),
        ("Config changes by result (1h)", "timeseries", "short",
         ["sum by (result) (increase(tidegate_config_reloads_total[1h]))"]),
        ("Blue/green and canary: traffic share by route and label subset", "timeseries", "percentunit",
         [f"sum by (route, subset) (rate(tidegate_subset_requests_total[{RI}])) / ignoring(subset) group_left sum by (route) (rate(tidegate_subset_requests_total[{RI}]))"]),
        ("Endpoints by service and state", "table", "none",
         ["sum by (service, state) (tidegate_service_endpoints)"]),
        ("Access log lines dropped per second", "timeseries", "short",
         [f"sum(rate(tidegate_access_log_dropped_total[{RI}]))"]),
        ("Nacos reachable, by gateway (0: serving last known instances)", "timeseries", "none",
         ["tidegate_nacos_up"]),
        ("Services on last known instances (registry down, empty or garbled answer)", "stat",
         "none", ["max(tidegate_nacos_stale_services)"]),
        ("Nacos calls by result", "timeseries", "reqps",
         [f"sum by (result) (rate(tidegate_nacos_requests_total[{RI}]))"]),
        ("TLS certificates: days until expiry, by name", "table", "none",
         ["min by (name) (tidegate_tls_certificate_expiry_seconds - time()) / 86400"]),
    ]),
}


def panel(i, title, kind, unit, exprs):
    return {
        "id": i + 1,
        "type": kind,
        "title": title,
        "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + k), "datasource": DS, "expr": e, "legendFormat": ""}
            for k, e in enumerate(exprs)
        ],
    }


def dashboard(uid, title, panels):
    return {
        "__inputs": [{
            "name": "DS_PROMETHEUS", "label": "Prometheus", "type": "datasource",
            "pluginId": "prometheus", "pluginName": "Prometheus",
        }],
        "uid": f"tidegate-{uid}",
        "title": title,
        "tags": ["tidegate"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{
            "name": "route", "label": "Route", "type": "query", "datasource": DS,
            "query": "label_values(tidegate_requests_total, route)",
            "includeAll": True, "multi": True, "allValue": ".*",
            "current": {"text": "All", "value": "$__all"}, "refresh": 2,
        }]},
        "panels": [panel(i, *p) for i, p in enumerate(panels)],
    }


out = pathlib.Path(__file__).resolve().parent.parent / "conf" / "grafana"
out.mkdir(parents=True, exist_ok=True)
for uid, (title, panels) in DASHBOARDS.items():
    (out / f"{uid}.json").write_text(json.dumps(dashboard(uid, title, panels), indent=2) + "\n")
    print(f"wrote {out / (uid + '.json')}")

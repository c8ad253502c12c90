#!/usr/bin/env python3
"""Draws a report's charts as SVG (no dependencies): load-tests/run.sh calls it.

    charts.py OUT_PREFIX < rows.json

rows.json: {"results": ["name|rps|cpu|rss|notes", ...], "latency": ["name @ R/s|p50|p99|p99.9", ...]}
Writes OUT_PREFIX-ratios.svg (Tidegate / nginx per paired scenario: throughput and CPU per
request, 1.0 marked) and OUT_PREFIX-latency.svg (p50/p99/p99.9 against the offered rate, both
proxies) and prints the markdown that embeds them.
"""

import html
import json
import os
import sys

# Tidegate rows whose nginx peer is not named "nginx" + the same suffix.
PEERS = {
    "tidegate, 10 000 routes": "nginx, 10 000 locations",
    "tidegate + waf (crs)": "nginx + ModSecurity + CRS",
    "tidegate + waf (crs), responses": "nginx + ModSecurity + CRS, responses",
    "tidegate + waf (crs), 16k page": "nginx + ModSecurity + CRS, 16k page",
}


def pairs(rows):
    by_name = {}
    for row in rows:
        name, rps, cpu = row.split("|")[:3]
        try:
            by_name[name] = (float(rps), float(cpu))
        except ValueError:
            continue
    out = []
    for name, (rps, cpu) in by_name.items():
        if not name.startswith("tidegate"):
            continue
        peer = PEERS.get(name, "nginx" + name[len("tidegate"):])
        if peer in by_name and by_name[peer][0] > 0 and by_name[peer][1] > 0:
            label = name[len("tidegate"):].lstrip(", ") or "keep-alive GET"
            out.append((label, rps / by_name[peer][0], cpu / by_name[peer][1]))
    return out


def ratios_svg(data):
    bar, gap, left, width = 9, 10, 260, 360
    height = 40 + len(data) * (2 * bar + gap) + 30
    top = max([2.5] + [max(t, c) for _, t, c in data])
    x = lambda v: left + v / top * width  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 60}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="18" font-weight="bold">Tidegate / nginx, same run</text>',
        '<rect x="300" y="8" width="10" height="10" fill="#2b7bb9"/><text x="315" y="17">throughput</text>',
        '<rect x="400" y="8" width="10" height="10" fill="#e07b39"/><text x="415" y="17">CPU per request</text>',
    ]
    y = 35
    for label, t, c in data:
        parts.append(f'<text x="{left - 8}" y="{y + bar + 3}" text-anchor="end">{html.escape(label)}</text>')
        for i, (v, colour) in enumerate(((t, "#2b7bb9"), (c, "#e07b39"))):
            yy = y + i * bar
            parts.append(f'<rect x="{left}" y="{yy}" width="{x(v) - left:.1f}" height="{bar - 1}" fill="{colour}"/>')
            parts.append(f'<text x="{x(v) + 4:.1f}" y="{yy + bar - 1}" font-size="10">{v:.2f}</text>')
        y += 2 * bar + gap
    parts.append(f'<line x1="{x(1):.1f}" y1="28" x2="{x(1):.1f}" y2="{y}" stroke="#333" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{x(1):.1f}" y="{y + 14}" text-anchor="middle">1.0 = nginx</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def latency_svg(rows):
    points = {}  # (proxy, percentile) -> [(rate, ms)]
    for row in rows:
        name, *values = row.split("|")
        proxy, _, rate = name.partition(" @ ")
        try:
            rate = float(rate.rstrip("/s"))
            values = [float(v) for v in values[:3]]
        except ValueError:
            continue
        for pct, v in zip(("p50", "p99", "p99.9"), values):
            points.setdefault((proxy, pct), []).append((rate, v))
    if not points:
        return None
    left, top, w, h = 60, 30, 420, 240
    rates = sorted({r for pts in points.values() for r, _ in pts})
    most = max(v for pts in points.values() for _, v in pts) * 1.1
    lo, hi = rates[0] * 0.8, rates[-1] * 1.1
    x = lambda r: left + (r - lo) / (hi - lo) * w  # noqa: E731
    y = lambda v: top + h - v / most * h  # noqa: E731
    colours = {"nginx": "#2b7bb9", "tidegate": "#e07b39"}
    dashes = {"p50": "2 3", "p99": "", "p99.9": "8 3"}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 150}" height="{top + h + 50}" '
        'font-family="sans-serif" font-size="12">',
        '<text x="10" y="18" font-weight="bold">Latency against offered rate (oha, latency-corrected)</text>',
        f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#333"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#333"/>',
        f'<text x="{left + w / 2}" y="{top + h + 35}" text-anchor="middle">requests/s</text>',
        f'<text x="15" y="{top + h / 2}" transform="rotate(-90 15 {top + h / 2})" text-anchor="middle">ms</text>',
    ]
    for r in rates:
        parts.append(f'<text x="{x(r):.1f}" y="{top + h + 16}" text-anchor="middle">{r:.0f}</text>')
    for i in range(5):
        v = most * i / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    legend = top
    for (proxy, pct), pts in sorted(points.items()):
        pts.sort()
        colour = colours.get(proxy, "#666")
        line = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in pts)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-dasharray="{dashes[pct]}"/>'
        )
        for r, v in pts:
            parts.append(f'<circle cx="{x(r):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
        parts.append(
            f'<line x1="{left + w + 15}" y1="{legend}" x2="{left + w + 45}" y2="{legend}" '
            f'stroke="{colour}" stroke-width="2" stroke-dasharray="{dashes[pct]}"/>'
        )
        parts.append(f'<text x="{left + w + 50}" y="{legend + 4}">{html.escape(proxy)} {pct}</text>')
        legend += 18
    parts.append("</svg>")
    return "\n".join(parts)


def main():
    prefix = sys.argv[1]
    rows = json.load(sys.stdin)
    base = os.path.basename(prefix)
    data = pairs(rows.get("results", []))
    if data:
        with open(f"{prefix}-ratios.svg", "w") as f:
            f.write(ratios_svg(data))
        print(f"![Tidegate / nginx: throughput and CPU per request]({base}-ratios.svg)\n")
    svg = latency_svg(rows.get("latency", []))
    if svg:
        with open(f"{prefix}-latency.svg", "w") as f:
            f.write(svg)
        print(f"![latency percentiles against offered rate]({base}-latency.svg)\n")


if __name__ == "__main__":
    main()

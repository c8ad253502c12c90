#!/usr/bin/env python3
"""OWASP CRS regression tests (ftw YAML) through a real gateway, judged from the WAF's logs.

Every stage of every test is sent over a raw TCP socket to --target, built the way ftw 1.3.0
builds it (see build_request), one request at a time. What the WAF logged for that request
is then read back through an adapter:

  nginx     nginx + ModSecurity v3: error.log lines with `[id "NNNNNN"]` and
            `[unique_id "<request id>"]`, plus the JSON audit log's messages[].details.ruleId
            (the unique id is the request id: `modsecurity_transaction_id`).
  tidegate  Tidegate's JSON access log: the line whose "request_id" is the request's id, and
            its "waf" object {"action": ..., "score": N, "rules": [942100, ...]}.

A stage whose output has `log_contains` naming a rule id is an attack case; it counts at
paranoia level PL when that rule sits at PL or below (rule files' EXECUTING_PARANOIA_LEVEL
sections) and its YAML file is enabled. Detected = the test's own log_contains regex matches
one of the request's log lines. A stage with `no_log_contains` is a must-not-match case (a
false positive when the regex matches). See README.md beside this file.
"""

import argparse
import base64
import glob
import json
import os
import re
import socket
import sys
import time
from urllib.parse import parse_qsl, unquote, urlencode

import yaml

CRLF = "\r\n"
FORM = "application/x-www-form-urlencoded"
RULE_ID = re.compile(r"(9\d{5})")


# ---------------------------------------------------------------------------------------------
# Tests and rules


class Stage:
    def __init__(self, test, index, stage):
        self.test = test
        self.index = index
        self.input = stage.get("input") or {}
        self.output = stage.get("output") or {}
        out = self.output
        self.log_contains = out.get("log_contains")
        self.no_log_contains = out.get("no_log_contains")
        self.status = out.get("status")
        self.expect_error = bool(out.get("expect_error"))
        self.rule = None
        if self.log_contains:
            m = RULE_ID.search(str(self.log_contains))
            self.rule = int(m.group(1)) if m else None
        self.nlc_rule = None
        if self.no_log_contains:
            m = RULE_ID.search(str(self.no_log_contains))
            self.nlc_rule = int(m.group(1)) if m else None


class Test:
    def __init__(self, key, title, rule_file, yaml_file, enabled, doc):
        self.key = key
        self.title = title
        self.rule_file = rule_file
        self.yaml_file = yaml_file
        self.enabled = enabled
        self.stages = [Stage(self, i, s.get("stage") or {}) for i, s in enumerate(doc.get("stages") or [])]


def load_tests(tests_dir):
    """Every test of every YAML file under tests_dir, in file order. A YAML file whose
    meta.enabled is false (or a test whose enabled is false) is loaded but not run, as ftw."""
    files = sorted(glob.glob(os.path.join(tests_dir, "**", "*.yaml"), recursive=True))
    if not files:
        raise SystemExit(f"no YAML tests under {tests_dir} (run scripts/crs-tests.sh fetch)")
    tests, seen = [], {}
    for path in files:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        meta = doc.get("meta") or {}
        file_enabled = meta.get("enabled", True) is not False
        rule_file = os.path.basename(os.path.dirname(path))
        for t in doc.get("tests") or []:
            title = str(t.get("test_title"))
            seen[title] = seen.get(title, 0) + 1
            key = title if seen[title] == 1 else f"{title}~{seen[title]}"
            enabled = file_enabled and t.get("enabled", True) is not False
            tests.append(Test(key, title, rule_file, os.path.basename(path), enabled, t))
    return tests


def paranoia_levels(rules_dir):
    """rule id -> paranoia level, from the `SecRule TX:EXECUTING_PARANOIA_LEVEL "@lt N"`
    markers that open each level's section of a CRS rule file."""
    levels = {}
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.conf"))):
        pl = 1
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                s = line.strip()
                if s.startswith("#"):
                    continue
                m = re.search(r'EXECUTING_PARANOIA_LEVEL "@lt (\d)"', s)
                if m:
                    pl = int(m.group(1))
                    continue
                for rid in re.findall(r"\bid:(\d+)", s):
                    levels[int(rid)] = pl
    if not levels:
        raise SystemExit(f"no CRS rules under {rules_dir}")
    return levels


# ---------------------------------------------------------------------------------------------
# Requests, as ftw 1.3.0 sends them


def build_request(inp, request_id):
    """The bytes to send for a stage input, and whether the correlation header went in.

    encoded_request: base64-decoded, sent as is. raw_request: ftw runs it through
    `unicode_escape` (so a literal \\r\\n in the YAML becomes CR LF), sent as is. Neither gets
    the correlation header: their bytes are what the test is about.

    Otherwise `METHOD URI VERSION`, the headers in the YAML's order, an empty line and the
    data (a list is joined with CRLF). Unless stop_magic is set, data gets
    `Content-Type: application/x-www-form-urlencoded` when the test names no Content-Type,
    is form-encoded again (parse_qsl + urlencode) when the type is exactly that and the data
    has no %-escapes, and gets a Content-Length when the test names none. With stop_magic
    the headers are exactly the test's. Header names are compared exactly, as ftw does (all
    CRS 3.3.4 tests spell them canonically). Content-Length counts bytes (ftw counts
    characters; the same for the ASCII-only data of CRS 3.3.4).
    """
    if inp.get("encoded_request") is not None:
        return base64.b64decode(inp["encoded_request"]), False
    if inp.get("raw_request") is not None:
        text = str(inp["raw_request"]).encode("utf-8").decode("unicode_escape")
        try:
            return text.encode("latin-1"), False
        except UnicodeEncodeError:
            return text.encode("utf-8"), False

    method = str(inp.get("method", "GET"))
    uri = str(inp.get("uri", "/"))
    version = str(inp.get("version", "HTTP/1.1"))
    stop_magic = inp.get("stop_magic", False) is True
    headers = [(str(k), str(v)) for k, v in (inp.get("headers") or {}).items()]
    names = {k for k, _ in headers}
    data = inp.get("data", "")
    if data is None:
        data = ""
    if isinstance(data, list):
        data = CRLF.join(str(d) for d in data)
    data = str(data)
    body = b""
    if data != "":
        if "Content-Type" not in names and not stop_magic:
            headers.append(("Content-Type", FORM))
            names.add("Content-Type")
        ctype = dict(headers).get("Content-Type")
        if ctype == FORM and not stop_magic and unquote(data) == data:
            pairs = parse_qsl(data)
            if pairs:
                data = urlencode(pairs)
        body = data.encode("utf-8")
        if "Content-Length" not in names and not stop_magic:
            headers.append(("Content-Length", str(len(body))))
    added = False
    if request_id is not None and "X-Request-Id" not in names:
        headers.append(("X-Request-Id", request_id))
        added = True
    head = f"{method} {uri} {version}{CRLF}" + "".join(f"{k}: {v}{CRLF}" for k, v in headers) + CRLF
    return head.encode("utf-8") + body, added


class Response:
    def __init__(self):
        self.raw = b""
        self.status = None
        self.headers = {}
        self.error = None  # why there is no usable response (ftw's TestError)
        self.elapsed = 0.0


def _response_complete(buf, method):
    """True when buf holds a whole response (by Content-Length or chunked framing)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = buf[:end].decode("latin-1", "replace").split("\r\n")
    parts = head[0].split(" ", 2)
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        return True  # garbage: nothing more to wait for
    if status == 100:
        return _response_complete(buf[end + 4:], method)
    if method.upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return True
    hdrs = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs[k.strip().lower()] = v.strip()
    body = buf[end + 4:]
    if "chunked" in hdrs.get("transfer-encoding", "").lower():
        return body.endswith(b"0\r\n\r\n")
    if "content-length" in hdrs:
        try:
            return len(body) >= int(hdrs["content-length"])
        except ValueError:
            return True
    return False  # delimited by close


def parse_response(resp):
    buf = resp.raw
    # skip interim 100 Continue answers
    while buf.startswith(b"HTTP/") and b" 100 " in buf.split(b"\r\n", 1)[0]:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            break
        buf = buf[end + 4:]
    end = buf.find(b"\r\n\r\n")
    head = (buf if end < 0 else buf[:end]).decode("latin-1", "replace").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        resp.error = f"unparsable response line {head[0][:80]!r}"
        return
    try:
        resp.status = int(parts[1])
    except ValueError:
        resp.error = f"unparsable status in {head[0][:80]!r}"
        return
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            resp.headers[k.strip().lower()] = v.strip()


def exchange(host, port, payload, method, timeout):
    """Send payload on a fresh connection and read the response until it is complete, the
    server closes, or `timeout` seconds have passed since connecting."""
    resp = Response()
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        resp.error = f"connect: {e}"
        resp.elapsed = time.monotonic() - t0
        return resp
    try:
        try:
            sock.sendall(payload)
        except OSError as e:
            resp.error = f"send: {e}"  # the server may still have answered; read on
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            except OSError as e:
                if not chunks:
                    resp.error = f"recv: {e}"
                break
            if not data:
                break
            chunks.append(data)
            if _response_complete(b"".join(chunks), method):
                break
        resp.raw = b"".join(chunks)
    finally:
        try:
            sock.close()
        except OSError:
            pass
    resp.elapsed = time.monotonic() - t0
    if resp.raw:
        resp.error = None
        parse_response(resp)
    elif resp.error is None:
        resp.error = f"no response (closed or timed out after {resp.elapsed:.1f} s)"
    return resp


# ---------------------------------------------------------------------------------------------
# Log files and adapters


class Tail:
    """New complete lines of a file that may not exist yet, from where it ended at start."""

    def __init__(self, path):
        self.path = path
        self.pos = os.path.getsize(path) if path and os.path.exists(path) else 0
        self.rest = b""

    def read(self):
        if not self.path or not os.path.exists(self.path):
            return []
        size = os.path.getsize(self.path)
        if size < self.pos:  # truncated or rotated
            self.pos, self.rest = 0, b""
        if size == self.pos:
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.pos)
            data = fh.read(size - self.pos)
        self.pos += len(data)
        data = self.rest + data
        lines = data.split(b"\n")
        self.rest = lines.pop()
        return [ln.decode("utf-8", "replace") for ln in lines if ln]


class Evidence:
    """What the logs say about one request."""

    def __init__(self):
        self.seen = False  # the gateway logged the request at all
        self.lines = []  # lines the test's log_contains / no_log_contains regexes are run on
        self.rules = set()
        self.action = None
        self.score = None


class Adapter:
    """Indexes log lines by request id as they appear. `done(rid)` is true once the
    gateway's per-request record (written when the request is finished) is there."""

    name = "?"

    def __init__(self):
        self.by_id = {}
        self.finished = set()
        self.window = []  # (rid or None, line) appended since the last mark, in order

    def poll(self):
        raise NotImplementedError

    def complete(self, rid):
        """Whether everything the gateway logs about a finished request is there."""
        return True

    def mark(self):
        self.poll()
        self.window = []

    def _add(self, rid, line=None, rule=None, finished=False):
        ev = self.by_id.setdefault(rid, Evidence())
        if line is not None:
            ev.lines.append(line)
            self.window.append((rid, line))
        if rule is not None:
            ev.rules.add(rule)
        if finished:
            ev.seen = True
            self.finished.add(rid)
            self.window.append((rid, None))
        return ev

    def evidence(self, rid, exclude=()):
        """Evidence for rid; without a rid, everything logged since the last mark except
        the ids in exclude (the runner sends one request at a time)."""
        if rid is not None:
            return self.by_id.get(rid) or Evidence()
        ev = Evidence()
        for r, line in self.window:
            if r in exclude:
                continue
            ev.seen = True
            if line is not None:
                ev.lines.append(line)
                ev.rules.update(int(x) for x in re.findall(r'\[id "(\d+)"\]', line))
        return ev


class NginxModsec(Adapter):
    """error.log (`ModSecurity: ... [id "942100"] ... [unique_id "crs-12"]`), the access log
    written by the nginx peer's `log_format crs` (`crs_id=<id> status=<code> ...`), and the
    JSON audit log if given (messages[].details.ruleId of transaction.unique_id)."""

    name = "nginx"
    UNIQ = re.compile(r'\[unique_id "([^"]*)"\]')
    IDS = re.compile(r'\[id "(\d+)"\]')
    ACCESS = re.compile(r"^crs_id=(\S*) status=(\d+)")

    def __init__(self, error_log, access_log, audit_log=None):
        super().__init__()
        self.error = Tail(error_log)
        self.access = Tail(access_log)
        self.audit = Tail(audit_log) if audit_log else None
        self.audit_done = set()

    def poll(self):
        for line in self.error.read():
            if "ModSecurity" not in line:
                continue
            m = self.UNIQ.search(line)
            rid = m.group(1) if m else None
            ev = self._add(rid, line)
            ev.rules.update(int(x) for x in self.IDS.findall(line))
        if self.audit:
            for line in self.audit.read():
                try:
                    tx = json.loads(line).get("transaction") or {}
                except (ValueError, AttributeError):
                    continue
                rid = tx.get("unique_id") or None
                for msg in tx.get("messages") or []:
                    rule = (msg.get("details") or {}).get("ruleId")
                    if rule and str(rule).isdigit():
                        # the same shape as the error log's, so the tests' regexes apply
                        self._add(rid, f'[audit] [id "{rule}"] [msg "{msg.get("message", "")}"]',
                                  rule=int(rule))
                self.audit_done.add(rid)
        for line in self.access.read():
            m = self.ACCESS.search(line)
            if m:
                self._add(m.group(1) or None, finished=True)

    def complete(self, rid):
        # nginx writes the audit entry in the log phase just after the access log line; a
        # request nginx refused before ModSecurity saw it has none
        return self.audit is None or rid in self.audit_done


class Tidegate(Adapter):
    """Tidegate's JSON access log: {"request_id": ..., "status": ..., "waf": {"action":
    "block"|"detect"|"pass", "score": N, "rules": [942100, ...]}}. Each rule becomes a line
    `[id "942100"]` for the tests' regexes."""

    name = "tidegate"

    def __init__(self, access_log):
        super().__init__()
        self.access = Tail(access_log)

    def poll(self):
        for line in self.access.read():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict):
                continue
            rid = rec.get("request_id") or None
            waf = rec.get("waf") if isinstance(rec.get("waf"), dict) else {}
            ev = self._add(rid, finished=True)
            ev.action = waf.get("action")
            ev.score = waf.get("score")
            for rule in waf.get("rules") or []:
                try:
                    rule = int(rule)
                except (TypeError, ValueError):
                    continue
                self._add(rid, f'[id "{rule}"] [waf-action "{ev.action}"]', rule=rule)


class UpstreamLog:
    """The logging upstream's file (gateway/tests/crs/upstream.py): one JSON line per request
    that got through, {"id": <X-Request-Id>, "line": <request line>}."""

    def __init__(self, path):
        self.tail = Tail(path)
        self.ids = set()
        self.window = []

    def mark(self):
        self.poll()
        self.window = []

    def poll(self):
        for line in self.tail.read():
            try:
                rid = json.loads(line).get("id") or None
            except ValueError:
                continue
            self.ids.add(rid)
            self.window.append(rid)

    def reached(self, rid, exclude=()):
        self.poll()
        if rid is not None:
            return rid in self.ids
        return any(r not in exclude for r in self.window)


# ---------------------------------------------------------------------------------------------
# The run


def marker_request(rid):
    return (
        "GET /crs-marker HTTP/1.1\r\nHost: localhost\r\nUser-Agent: crs-runner\r\n"
        f"Accept: */*\r\nX-Request-Id: {rid}\r\nConnection: close\r\n\r\n"
    ).encode()


class Runner:
    def __init__(self, args, adapter, upstream):
        self.args = args
        self.adapter = adapter
        self.upstream = upstream
        host, _, port = args.target.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.n = 0
        self.markers = set()

    def _wait(self, rid, seconds):
        """Poll the logs until the gateway's record for rid is there (bounded)."""
        deadline = time.monotonic() + seconds
        while True:
            self.adapter.poll()
            if rid in self.adapter.finished:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        grace = time.monotonic() + 0.05
        while not self.adapter.complete(rid) and time.monotonic() < grace:
            time.sleep(0.002)
            self.adapter.poll()
        return True

    def flush(self):
        """Send a marker request and wait for its record: everything the gateway logged for
        the requests before it is then in the files (one request at a time)."""
        self.n += 1
        rid = f"crs-mark-{self.n}"
        self.markers.add(rid)
        exchange(self.host, self.port, marker_request(rid), "GET", self.args.timeout)
        return self._wait(rid, self.args.log_wait)

    def run_stage(self, stage):
        self.n += 1
        rid_sent = None if self.args.no_request_id else f"crs-{self.n}"
        payload, added = build_request(stage.input, rid_sent)
        if not added:
            rid_sent = None
        method = str(stage.input.get("method", "GET")).strip()
        self.adapter.mark()
        self.upstream.mark()
        resp = exchange(self.host, self.port, payload, method, self.args.timeout)
        # the id the gateway says it used (nginx peer and Tidegate both answer with it), else ours
        rid = resp.headers.get("x-request-id") or rid_sent
        settled = rid is not None and self._wait(rid, self.args.settle)
        if not settled:
            self.flush()
        ev = self.adapter.evidence(rid, exclude=self.markers)
        if rid is not None and not ev.seen:
            # the gateway did not log under our id (e.g. rejected before it read headers):
            # fall back to whatever it logged while this request was in flight
            ev2 = self.adapter.evidence(None, exclude=self.markers)
            if ev2.seen:
                ev = ev2
        reached = self.upstream.reached(rid, exclude=self.markers)
        if rid is not None and not reached:
            reached = self.upstream.reached(None, exclude=self.markers | {None})
        return rid, resp, ev, reached


def judge(stage, resp, ev):
    """ftw's verdict for one stage: the list of failed checks (empty = pass)."""
    failed = []
    if stage.expect_error:
        if resp.error is None:
            failed.append("expected an error, got a response")
    elif resp.error is not None:
        failed.append(f"error: {resp.error}")
    if stage.log_contains:
        rx = re.compile(str(stage.log_contains))
        if not any(rx.search(line) for line in ev.lines):
            failed.append(f"log_contains {stage.log_contains!r} not logged")
    if stage.no_log_contains:
        rx = re.compile(str(stage.no_log_contains))
        if any(rx.search(line) for line in ev.lines):
            failed.append(f"no_log_contains {stage.no_log_contains!r} logged")
    if stage.status is not None and not stage.expect_error:
        want = stage.status if isinstance(stage.status, list) else [stage.status]
        if resp.status not in [int(w) for w in want]:
            failed.append(f"status {resp.status} not in {want}")
    return failed


def pct(a, b):
    return round(100.0 * a / b, 2) if b else None


def fmt_pct(a, b):
    return f"{100.0 * a / b:.1f} %" if b else "–"


def summarize(records):
    files = {}
    tot = dict(attack=0, detected=0, blocked=0, stopped=0, reached=0, nomatch=0, fp=0, fp_blocked=0,
               other=0, other_pass=0, inactive_attack=0, inactive_detected=0)
    for r in records:
        f = files.setdefault(r["rule_file"], {k: 0 for k in tot})
        for acc in (tot, f):
            if r["kind"] == "attack":
                acc["attack"] += 1
                acc["detected"] += r["detected"]
                acc["blocked"] += r["blocked"]
                acc["stopped"] += r["stopped"]
                acc["reached"] += r["reached_upstream"]
            elif r["kind"] == "attack-above-pl":
                acc["inactive_attack"] += 1
                acc["inactive_detected"] += r["detected"]
            if r["kind_nomatch"] == "nomatch":
                acc["nomatch"] += 1
                acc["fp"] += r["false_positive"]
                acc["fp_blocked"] += r["false_positive"] and r["blocked"]
            if r["kind"] == "other":
                acc["other"] += 1
                acc["other_pass"] += r["pass"]
    return tot, files


def markdown(tot, files, meta):
    out = [
        f"### CRS {meta['crs_version']} regression tests, PL{meta['paranoia_level']}, "
        f"{meta['adapter']} at {meta['target']}",
        "",
        "| rule file | attack cases | detected | detected % | blocked (403) | blocked % "
        "| stopped (4xx) | reached upstream | must-not-match | false positives | FP % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name in sorted(files):
        f = files[name]
        out.append(
            f"| {name} | {f['attack']} | {f['detected']} | {fmt_pct(f['detected'], f['attack'])} "
            f"| {f['blocked']} | {fmt_pct(f['blocked'], f['attack'])} | {f['stopped']} "
            f"| {f['reached']} "
            f"| {f['nomatch']} | {f['fp']} | {fmt_pct(f['fp'], f['nomatch'])} |"
        )
    out.append(
        f"| **total** | **{tot['attack']}** | **{tot['detected']}** "
        f"| **{fmt_pct(tot['detected'], tot['attack'])}** | **{tot['blocked']}** "
        f"| **{fmt_pct(tot['blocked'], tot['attack'])}** | **{tot['stopped']}** "
        f"| **{tot['reached']}** | **{tot['nomatch']}** | **{tot['fp']}** "
        f"| **{fmt_pct(tot['fp'], tot['nomatch'])}** |"
    )
    out.append("")
    out.append(
        f"Attack cases: enabled stages whose log_contains names a rule at PL ≤ "
        f"{meta['paranoia_level']}; detected = that rule logged for the request; blocked = "
        f"answered {meta['block_status']} (what the issue calls stopped); stopped (4xx) = "
        f"blocked, or refused with another 4xx before the WAF (a malformed request) without "
        f"reaching the upstream. Must-not-match: "
        f"enabled stages with no_log_contains whose rule is at PL ≤ {meta['paranoia_level']}; "
        f"false positive = that rule logged. Above this PL (not counted): "
        f"{tot['inactive_attack']} attack stages, {tot['inactive_detected']} logged anyway. "
        f"Status/expect_error-only stages: {tot['other_pass']}/{tot['other']} pass. "
        f"Tests passing (all ftw checks): {meta['tests_passing']}/{meta['tests_run']}. "
        f"Run took {meta['duration_s']:.0f} s."
    )
    return "\n".join(out) + "\n"


def load_baseline(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    try:
        doc = json.loads(text)
    except ValueError:
        return None, {ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")}
    return doc.get("meta", {}).get("paranoia_level"), set(doc.get("passing_tests") or [])


def main():
    ap = argparse.ArgumentParser(description="OWASP CRS regression tests through a gateway")
    ap.add_argument("--tests", default="target/crs/tests", help="dir of ftw YAML files")
    ap.add_argument("--rules", default="target/crs/rules",
                    help="CRS rules dir (for each rule's paranoia level)")
    ap.add_argument("--target", required=True, help="host:port of the gateway")
    ap.add_argument("--pl", type=int, required=True, choices=[1, 2, 3, 4],
                    help="paranoia level the WAF runs at")
    ap.add_argument("--adapter", required=True, choices=["nginx", "tidegate"])
    ap.add_argument("--error-log", help="nginx: error.log")
    ap.add_argument("--access-log", required=True, help="nginx or Tidegate access log")
    ap.add_argument("--audit-log", help="nginx: ModSecurity JSON audit log (optional)")
    ap.add_argument("--upstream-log", required=True, help="the logging upstream's file")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--markdown", help="write the table here too")
    ap.add_argument("--floor", type=float,
                    help="fail if the --floor-metric rate (%%) of the attack cases is below this")
    ap.add_argument("--floor-metric", choices=["blocked", "detected", "stopped"], default="blocked",
                    help="blocked: answered --block-status (the issue's 'stops', nginx 97.8 %% "
                         "at PL1); detected: the test's rule logged; stopped: blocked, or another "
                         "4xx without reaching the upstream (default blocked)")
    ap.add_argument("--block-status", type=int, default=403,
                    help="the status a blocking WAF answers with (403)")
    ap.add_argument("--max-connect-errors", type=int, default=20,
                    help="abort after this many requests in a row could not connect (20)")
    ap.add_argument("--baseline", help="results JSON (or a list of test ids) that must keep passing")
    ap.add_argument("--only", help="regex: run only tests whose id or rule file matches")
    ap.add_argument("--timeout", type=float, default=5.0, help="per request, seconds (5)")
    ap.add_argument("--settle", type=float, default=0.3,
                    help="wait this long for the request's log record before flushing (0.3 s)")
    ap.add_argument("--log-wait", type=float, default=3.0,
                    help="how long a flush marker's record may take to appear (3 s)")
    ap.add_argument("--max-seconds", type=float, default=1800.0, help="bound on the whole run")
    ap.add_argument("--no-request-id", action="store_true",
                    help="send no X-Request-Id; correlate by the response's id / position")
    ap.add_argument("--crs-version", default="3.3.4")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    if args.adapter == "nginx" and not args.error_log:
        ap.error("--adapter nginx needs --error-log")

    levels = paranoia_levels(args.rules)
    tests = load_tests(args.tests)
    only = re.compile(args.only) if args.only else None
    if args.adapter == "nginx":
        adapter = NginxModsec(args.error_log, args.access_log, args.audit_log)
    else:
        adapter = Tidegate(args.access_log)
    upstream = UpstreamLog(args.upstream_log)
    runner = Runner(args, adapter, upstream)

    if not runner.flush():
        print(f"error: the gateway at {args.target} logged no record for a probe request "
              f"within {args.log_wait:g} s (access log {args.access_log})", file=sys.stderr)
        return 2

    started = time.time()
    t0 = time.monotonic()
    records, test_pass, not_run = [], {}, 0
    connect_errors = 0
    for test in tests:
        if not test.enabled:
            continue
        if only and not (only.search(test.key) or only.search(test.rule_file)):
            continue
        if time.monotonic() - t0 > args.max_seconds:
            not_run += 1
            continue
        ok = True
        for stage in test.stages:
            rid, resp, ev, reached = runner.run_stage(stage)
            connect_errors = connect_errors + 1 if (resp.error or "").startswith("connect") else 0
            if connect_errors >= args.max_connect_errors:
                print(f"error: {connect_errors} requests in a row could not connect to "
                      f"{args.target} ({resp.error}); is the gateway still up?", file=sys.stderr)
                return 2
            failed = judge(stage, resp, ev)
            ok = ok and not failed
            kind = "other"
            if stage.log_contains:
                rule_pl = levels.get(stage.rule)
                kind = "attack" if rule_pl is not None and rule_pl <= args.pl else "attack-above-pl"
            nlc_pl = levels.get(stage.nlc_rule) if stage.no_log_contains else None
            kind_nomatch = None
            if stage.no_log_contains:
                kind_nomatch = "nomatch" if nlc_pl is not None and nlc_pl <= args.pl else "nomatch-above-pl"
                if kind == "other":
                    kind = "nomatch-only"
            nlc_hit = bool(stage.no_log_contains) and any(
                re.search(str(stage.no_log_contains), ln) for ln in ev.lines)
            lc_hit = bool(stage.log_contains) and any(
                re.search(str(stage.log_contains), ln) for ln in ev.lines)
            rec = {
                "test": test.key,
                "stage": stage.index,
                "rule_file": test.rule_file,
                "yaml": test.yaml_file,
                "kind": kind,
                "kind_nomatch": kind_nomatch,
                "rule": stage.rule or stage.nlc_rule,
                "rule_pl": levels.get(stage.rule or stage.nlc_rule),
                "request_id": rid,
                "status": resp.status,
                "error": resp.error,
                "elapsed_ms": round(resp.elapsed * 1000, 1),
                "logged": ev.seen,
                "rules_logged": sorted(ev.rules),
                "waf_action": ev.action,
                "waf_score": ev.score,
                "detected": lc_hit,
                "false_positive": nlc_hit,
                "blocked": resp.status == args.block_status,
                "stopped": resp.status == args.block_status
                or (400 <= (resp.status or 0) < 500 and not reached),
                "reached_upstream": reached,
                "pass": not failed,
                "failed": failed,
            }
            records.append(rec)
            if not args.quiet and failed and kind == "attack":
                print(f"  miss {test.key} ({test.rule_file}): {'; '.join(failed)}", file=sys.stderr)
        test_pass[test.key] = ok
    duration = time.monotonic() - t0

    tot, files = summarize(records)
    meta = {
        "crs_version": args.crs_version,
        "paranoia_level": args.pl,
        "adapter": args.adapter,
        "target": args.target,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(duration, 1),
        "stages_run": len(records),
        "tests_run": len(test_pass),
        "tests_passing": sum(test_pass.values()),
        "tests_not_run_time_bound": not_run,
        "request_id_header": not args.no_request_id,
        "block_status": args.block_status,
        "floor_metric": args.floor_metric,
        "counting": "attack case = stage of an enabled YAML file whose output.log_contains names "
                    "a rule whose paranoia level <= PL (1242 at PL1); detected = the test's "
                    "log_contains regex matches the request's WAF log lines; blocked = answered "
                    "block_status; must-not-match = enabled stage with no_log_contains naming a "
                    "rule at PL <= PL, false positive = its regex matches",
    }
    table = markdown(tot, files, meta)
    print(table)
    result = {
        "meta": meta,
        "totals": dict(tot, detection_pct=pct(tot["detected"], tot["attack"]),
                       blocked_pct=pct(tot["blocked"], tot["attack"]),
                       stopped_pct=pct(tot["stopped"], tot["attack"]),
                       fp_pct=pct(tot["fp"], tot["nomatch"])),
        "per_rule_file": {k: dict(v, detection_pct=pct(v["detected"], v["attack"]),
                                  blocked_pct=pct(v["blocked"], v["attack"]),
                                  fp_pct=pct(v["fp"], v["nomatch"])) for k, v in sorted(files.items())},
        "passing_tests": sorted(k for k, v in test_pass.items() if v),
        "failing_tests": sorted(k for k, v in test_pass.items() if not v),
        "stages": records,
    }
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(table)

    rc = 0
    det = pct(tot["detected"], tot["attack"]) or 0.0
    blk = pct(tot["blocked"], tot["attack"]) or 0.0
    stp = pct(tot["stopped"], tot["attack"]) or 0.0
    print(f"PL{args.pl}: detected {tot['detected']}/{tot['attack']} ({det:.2f} %), "
          f"blocked {tot['blocked']}/{tot['attack']} ({blk:.2f} %), "
          f"stopped {tot['stopped']}/{tot['attack']} ({stp:.2f} %), "
          f"false positives {tot['fp']}/{tot['nomatch']}; {len(records)} requests in {duration:.0f} s")
    for path in (args.json, args.markdown):
        if path:
            print(f"wrote {path}")
    if not_run:
        print(f"FAIL: {not_run} tests not run within --max-seconds {args.max_seconds:g}")
        rc = 1
    if args.floor is not None:
        rate = {"blocked": blk, "detected": det, "stopped": stp}[args.floor_metric]
        if rate < args.floor:
            print(f"FAIL: {args.floor_metric} {rate:.2f} % is below the floor {args.floor:g} %")
            rc = 1
        else:
            print(f"floor: {args.floor_metric} {rate:.2f} % >= {args.floor:g} %")
    if args.baseline:
        base_pl, base = load_baseline(args.baseline)
        if base_pl is not None and base_pl != args.pl:
            print(f"FAIL: baseline {args.baseline} is for PL{base_pl}, this run is PL{args.pl}")
            return 2
        regressed = sorted(k for k in base if k in test_pass and not test_pass[k])
        missing = sorted(k for k in base if k not in test_pass)
        if regressed:
            print(f"FAIL: {len(regressed)} tests passed in {args.baseline} and fail now: "
                  + ", ".join(regressed[:50]) + (" …" if len(regressed) > 50 else ""))
            rc = 1
        elif not only and missing:
            print(f"note: {len(missing)} baseline tests were not run: {', '.join(missing[:10])}")
        if not regressed:
            print(f"baseline: all {len(base & set(test_pass))} tests passing in {args.baseline} still pass")
    return rc


if __name__ == "__main__":
    sys.exit(main())

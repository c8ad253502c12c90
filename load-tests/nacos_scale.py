#!/usr/bin/env python3
"""Scale of Nacos discovery: N simulated gateways x M services against one rnacos.

  load-tests/nacos_scale.py                      the full matrix (see --help), ~15 min
  load-tests/nacos_scale.py --quick              5 gateways x 20 services, 4 s windows (< 60 s)
  load-tests/nacos_scale.py --gateways 1,10 --services 50 --modes push,poll1 --window 10

A simulated gateway is not a Tidegate process but the registry traffic of one, as the gateway
makes it (gateway/src/nacos/grpc/, gateway/src/nacos/runner.rs):

  push   one gRPC connection (one HTTP/2 connection): ServerCheckRequest, the bi-stream opened
         with ConnectionSetupRequest, HealthCheckRequest until 200, then one
         SubscribeServiceRequest per service; NotifySubscriberRequest pushes are acked on the
         stream with NotifySubscriberResponse; HealthCheckRequest after 5 s without traffic.
  pollN  GET /nacos/v1/ns/instance/list?serviceName=..&groupName=..&namespaceId=..&clusters=
         &healthyOnly=false per service, then a sleep of N s (the gateway's loop), over at most
         --poll-conns keep-alive HTTP/1.1 connections per simulated gateway.

Per scenario the script starts its own rnacos on 127.0.0.1 (RNACOS_BIN, else
~/.cargo/bin/rnacos, else rnacos on PATH), registers M services with --instances persistent
instances each, opens the N gateways, and during a measured window changes the weight of the
first instance of a random service --change-rate times per second (HTTP PUT). It reports:

  registry CPU       rnacos user+system time (/proc/PID/stat, all threads) per wall second,
                     and per gateway-hour above the registry's idle rate (measured before the
                     gateways connect);
  bytes/s            counted at the client: gRPC messages (+5 bytes of gRPC framing each) and
                     HTTP requests/responses as written/read on the socket; HTTP/2 framing and
                     headers are not in it. A cross-check, "wire", sums the kernel's per-socket
                     bytes_sent+bytes_received of rnacos's sockets (ss -ti), i.e. TCP payload;
                     /proc/PID/net/dev is per network namespace, not per process;
  change->applied    per simulated gateway and change: from sending the PUT to the first push
                     (push) or poll answer (poll) that shows the new weight (or a later one);
  simulator CPU      this process's own CPU (one Python event loop: ~100 % of a core is its
                     ceiling), so a saturated simulator is reported as such, not as a registry
                     number; likewise a poll rate below its target, or a machine with no idle
                     CPU left.

Prints a Markdown table and a crossover statement, and writes JSON (and the Markdown) into
--out (default load-tests/results/). Dependencies: grpcio and protobuf; when this interpreter
lacks them the script makes a venv under target/ and re-runs itself there. The Payload message
is built at run time with protobuf's descriptor API (no generated code, no Nacos SDK).
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The same pins as the gRPC test kit (gateway/tests/grpc/requirements.txt): wheels, no compiler.
PINS = ["grpcio==1.85.1", "protobuf==7.36.2"]
VENV = os.path.join(ROOT, "target", "nacos-scale-venv")


def ensure_deps():
    try:
        import grpc  # noqa: F401
        import google.protobuf  # noqa: F401

        return
    except ImportError:
        pass
    if os.environ.get("NACOS_SCALE_BOOTSTRAPPED"):
        sys.exit(f"grpcio/protobuf still missing in {sys.prefix}")
    import subprocess

    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        print(f"== making a venv for the simulator in {VENV}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    probe = "import grpc, google.protobuf"
    if subprocess.call([python, "-c", probe], stderr=subprocess.DEVNULL) != 0:
        print(f"== pip install {' '.join(PINS)}", file=sys.stderr)
        subprocess.check_call(
            [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--only-binary=:all:", *PINS]
        )
    env = dict(os.environ, NACOS_SCALE_BOOTSTRAPPED="1")
    os.execve(python, [python, os.path.abspath(__file__), *sys.argv[1:]], env)


ensure_deps()

import argparse  # noqa: E402
import asyncio  # noqa: E402
import atexit  # noqa: E402
import heapq  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory  # noqa: E402
import google.protobuf  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")
GROUP = "DEFAULT_GROUP"
CLIENT_IP = "127.0.0.1"
KEEPALIVE = 5.0  # a HealthCheckRequest after this long without traffic (the gateway's KEEPALIVE)
UNARY_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0
CHANGED_IP, CHANGED_PORT = "10.0.0.1", 8000  # the instance whose weight changes


# ---------------------------------------------------------------------------------------------
# The Payload message (nacos_grpc_service.proto), built with the descriptor API:
#   message Metadata { string type = 3; string clientIp = 8; map<string,string> headers = 7; }
#   message Payload  { Metadata metadata = 2; google.protobuf.Any body = 3; }
# Any is declared locally with the same field numbers (type_url = 1, value = 2): the same bytes.
def build_payload_class():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="tidegate_nacos_scale.proto", syntax="proto3")
    any_ = fdp.message_type.add(name="Any")
    any_.field.add(name="type_url", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    any_.field.add(name="value", number=2, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    meta = fdp.message_type.add(name="Metadata")
    meta.field.add(name="type", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    meta.field.add(name="clientIp", number=8, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry = meta.nested_type.add(name="HeadersEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    meta.field.add(
        name="headers", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED, type_name=".Metadata.HeadersEntry"
    )
    payload = fdp.message_type.add(name="Payload")
    payload.field.add(name="metadata", number=2, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".Metadata")
    payload.field.add(name="body", number=3, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL, type_name=".Any")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("Payload"))


Payload = build_payload_class()


def encode(kind, body):
    p = Payload()
    p.metadata.type = kind
    p.metadata.clientIp = CLIENT_IP
    p.body.value = json.dumps(body, separators=(",", ":")).encode()
    return p.SerializeToString()


def decode(raw):
    p = Payload.FromString(raw)
    value = p.body.value
    return p.metadata.type, (json.loads(value) if value else None)


def changed_weight(hosts):
    for h in hosts or ():
        if h.get("ip") == CHANGED_IP and h.get("port") == CHANGED_PORT:
            return float(h.get("weight") or 0.0)
    return None


# ---------------------------------------------------------------------------------------------
# Processes and CPU.
def cpu_ticks(pid="self"):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)


def cpu_seconds(pid="self"):
    """(user+system seconds from /proc/PID/stat, on-CPU seconds summed over the live threads'
    schedstat). The first has the 10 ms granularity of clock ticks but keeps threads that
    exited; the second is in nanoseconds."""
    ns = 0
    task = f"/proc/{pid}/task"
    for t in os.listdir(task):
        try:
            with open(f"{task}/{t}/schedstat") as f:
                ns += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            pass
    return cpu_ticks(pid) / CLK, ns / 1e9


def cpu_delta(before, after):
    """CPU seconds between two cpu_seconds() readings: the precise one unless threads exited
    in between (then the clock-tick one is larger by more than its granularity)."""
    ticks, precise = after[0] - before[0], after[1] - before[1]
    if precise <= 0 or abs(ticks - precise) > 3 / CLK:
        return max(ticks, 0.0)
    return precise


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]) - idle, sum(v[:8])  # busy, total (user..steal)


def others_building():
    out = subprocess.run(["pgrep", "-x", "cargo|rustc"], capture_output=True, text=True).stdout.split()
    return len(out)


def rnacos_binary():
    if os.environ.get("RNACOS_BIN"):
        return os.environ["RNACOS_BIN"]
    home = os.environ.get("CARGO_HOME", os.path.join(os.path.expanduser("~"), ".cargo"))
    installed = os.path.join(home, "bin", "rnacos")
    if os.path.exists(installed):
        return installed
    return shutil.which("rnacos") or installed


def free_triple():
    """A port whose +1000 (gRPC) and +2000 (console) neighbours are free too."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port > 60000:
            continue
        ok = True
        for p in (port, port + 1000, port + 2000):
            t = socket.socket()
            try:
                t.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                t.close()
        if ok:
            return port


LIVE = set()  # rnacos processes still running; killed at exit whatever happens


def _kill_all():
    for p in list(LIVE):
        try:
            p.kill()
            p.wait(timeout=3)
        except Exception:
            pass
        LIVE.discard(p)


atexit.register(_kill_all)


class Rnacos:
    def __init__(self, tmp):
        self.port = free_triple()
        self.grpc_port = self.port + 1000
        self.dir = tempfile.mkdtemp(prefix="rnacos-", dir=tmp)
        env = dict(
            os.environ,
            RNACOS_HTTP_PORT=str(self.port),
            RNACOS_SDK_HOST="127.0.0.1",
            RNACOS_CONSOLE_HOST="127.0.0.1",
            RNACOS_RAFT_NODE_ADDR=f"127.0.0.1:{self.grpc_port}",
            RNACOS_DATA_DIR=os.path.join(self.dir, "data"),
        )
        cmd = [rnacos_binary()]
        if shutil.which("setpriv"):
            # Killed with us even if we are killed with SIGKILL (no chance for atexit).
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        self.log = open(os.path.join(self.dir, "rnacos.log"), "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self.log, cwd=self.dir)
        LIVE.add(self.proc)
        self.pid = self.proc.pid

    async def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rnacos exited with {self.proc.returncode}; log {self.log.name}")
            ok = 0
            for p in (self.port, self.grpc_port):
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", p)
                    w.close()
                    ok += 1
                except OSError:
                    pass
            if ok == 2:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("rnacos did not start")

    def cpu(self):
        return cpu_seconds(self.pid)

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        try:
            self.proc.terminate()
            self.proc.wait(timeout=3)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=3)
        LIVE.discard(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def wire_bytes(ports, exclude_peers):
    """Per-socket TCP payload bytes (sent + received) of rnacos's server-side sockets."""
    flt = " or ".join(f"sport = :{p}" for p in ports)
    try:
        out = subprocess.run(
            ["ss", "-tinH", "state", "established", f"( {flt} )"], capture_output=True, text=True, timeout=10
        ).stdout
    except Exception:
        return None
    sockets, key = {}, None
    for line in out.splitlines():
        if not line.startswith((" ", "\t")):
            parts = line.split()
            key = (parts[-2], parts[-1]) if len(parts) >= 2 else None
            continue
        if key is None or key[1] in exclude_peers:
            continue
        sent = re.search(r"bytes_sent:(\d+)", line)
        recv = re.search(r"bytes_received:(\d+)", line)
        if sent or recv:
            sockets[key] = int(sent.group(1) if sent else 0) + int(recv.group(1) if recv else 0)
    return sockets


# ---------------------------------------------------------------------------------------------
# A small HTTP/1.1 keep-alive client (asyncio Protocol): cheap per request, and it counts the
# bytes it writes and reads.
class Traffic:
    __slots__ = ("tx", "rx")

    def __init__(self):
        self.tx = 0
        self.rx = 0


class HttpConn(asyncio.Protocol):
    def __init__(self, traffic):
        self.traffic = traffic
        self.buf = bytearray()
        self.fut = None
        self.timer = None
        self.need = -1
        self.body_at = 0
        self.status = 0
        self.transport = None
        self.closed = False
        self.sockname = None

    @classmethod
    async def open(cls, port, traffic):
        loop = asyncio.get_running_loop()
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: cls(traffic), "127.0.0.1", port), HTTP_TIMEOUT
        )
        return conn

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        name = transport.get_extra_info("sockname")
        self.sockname = f"{name[0]}:{name[1]}"

    def connection_lost(self, exc):
        self.closed = True
        self._fail(exc or ConnectionResetError("connection closed"))

    def _fail(self, exc):
        fut, self.fut = self.fut, None
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if fut is not None and not fut.done():
            fut.set_exception(exc)

    def _timeout(self):
        self.timer = None
        self._fail(TimeoutError("no HTTP answer in time"))
        if self.transport:
            self.transport.abort()

    def data_received(self, data):
        self.traffic.rx += len(data)
        buf = self.buf
        buf += data
        if self.fut is None:
            return
        if self.need < 0:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(buf[:i]).lower()
            self.status = int(head[9:12])
            j = head.find(b"content-length:")
            if j < 0:
                self._fail(RuntimeError("answer without content-length"))
                self.transport.abort()
                return
            k = head.find(b"\r\n", j)
            self.body_at = i + 4
            self.need = self.body_at + int(head[j + 15 : k if k >= 0 else len(head)])
        if len(buf) >= self.need:
            body = bytes(buf[self.body_at : self.need])
            del buf[: self.need]
            self.need = -1
            fut, self.fut = self.fut, None
            if self.timer:
                self.timer.cancel()
                self.timer = None
            fut.set_result((self.status, body))

    def request(self, raw):
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.closed:
            fut.set_exception(ConnectionResetError("connection closed"))
            return fut
        self.fut = fut
        self.timer = loop.call_later(HTTP_TIMEOUT, self._timeout)
        self.transport.write(raw)
        self.traffic.tx += len(raw)
        return fut

    def close(self):
        if self.transport:
            self.transport.close()


def http_get(port, path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: tidegate-sim\r\nAccept: */*\r\n\r\n".encode()


def http_form(method, port, path, form):
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    return (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: tidegate-sim\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# ---------------------------------------------------------------------------------------------
class Sim:
    """What every simulated gateway shares in one scenario: the services, the changes made,
    the latencies seen, the traffic counters."""

    def __init__(self, nacos, services):
        self.nacos = nacos
        self.names = [f"scale-svc-{i:04d}" for i in range(services)]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.changes = [[] for _ in range(services)]  # per service: [(weight, t_sent)], ascending
        self.latencies = []
        self.recording = False
        self.traffic = Traffic()  # the gateways' traffic
        self.errors = 0
        self.error_samples = []
        self.requests = 0  # polls answered, or unary calls answered
        self.pushes = 0
        self.health_checks = 0
        self.resets = 0
        self.late = 0  # polls started > 10 % of the interval after they were due
        self.lateness = 0.0
        self.weight = 1.0  # the last weight set: every change sets a higher one

    def error(self, what):
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(str(what)[:200])

    def observe(self, seen, s, weight, now):
        """A gateway whose last seen weights are `seen` now sees `weight` on service s."""
        if weight is None or weight <= seen[s]:
            return
        if self.recording or self.changes[s]:
            last = seen[s]
            for w, t0 in reversed(self.changes[s]):
                if w <= last:
                    break
                if w <= weight:
                    self.latencies.append(now - t0)
        seen[s] = weight


class PushGateway:
    """One gRPC connection subscribing every service, as gateway/src/nacos/grpc/ does."""

    def __init__(self, sim, subscribe_concurrency):
        self.sim = sim
        self.seen = [0.0] * len(sim.names)
        self.concurrency = subscribe_concurrency
        self.channel = None
        self.stream = None
        self.reader = None
        self.last_active = 0.0
        self.checking = False

    async def unary(self, kind, body):
        raw = encode(kind, body)
        t = self.sim.traffic
        t.tx += len(raw) + 5
        answer = await self._unary(raw, timeout=UNARY_TIMEOUT)
        t.rx += len(answer) + 5
        self.last_active = asyncio.get_running_loop().time()
        self.sim.requests += 1
        kind, body = decode(answer)
        if kind == "ErrorResponse" or (body or {}).get("resultCode") != 200:
            raise RuntimeError(f"{kind}: {body}")
        return body

    async def open(self):
        loop = asyncio.get_running_loop()
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{self.sim.nacos.grpc_port}",
            options=[
                # One HTTP/2 connection per simulated gateway: grpcio would otherwise share one
                # subchannel between channels to the same address.
                ("grpc.use_local_subchannel_pool", 1),
                ("grpc.max_receive_message_length", 64 << 20),
                ("grpc.enable_retries", 0),
            ],
        )
        self._unary = self.channel.unary_unary("/Request/request")
        bi = self.channel.stream_stream("/BiRequestStream/requestBiStream")
        await self.unary("ServerCheckRequest", {"headers": {}, "module": "internal"})
        self.stream = bi()
        setup = encode(
            "ConnectionSetupRequest",
            {
                "headers": {},
                "module": "internal",
                "clientVersion": "Tidegate-sim:v0",
                "tenant": "public",
                "labels": {"source": "sdk", "module": "naming"},
                "abilityTable": {},
            },
        )
        self.sim.traffic.tx += len(setup) + 5
        await self.stream.write(setup)
        self.reader = asyncio.ensure_future(self.read_loop())
        for _ in range(100):
            try:
                await self.unary("HealthCheckRequest", {"headers": {}, "module": "internal"})
                break
            except RuntimeError:
                await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the connection never became ready (HealthCheck)")
        sem = asyncio.Semaphore(self.concurrency)

        async def subscribe(s):
            async with sem:
                body = await self.unary(
                    "SubscribeServiceRequest",
                    {
                        "headers": {},
                        "module": "naming",
                        "namespace": "public",
                        "serviceName": self.sim.names[s],
                        "groupName": GROUP,
                        "subscribe": True,
                        "clusters": "",
                    },
                )
                info = body.get("serviceInfo") or {}
                self.sim.observe(self.seen, s, changed_weight(info.get("hosts")), loop.time())

        await asyncio.gather(*(subscribe(s) for s in range(len(self.sim.names))))

    async def read_loop(self):
        sim, traffic = self.sim, self.sim.traffic
        loop = asyncio.get_running_loop()
        try:
            while True:
                raw = await self.stream.read()
                if raw is grpc.aio.EOF:
                    sim.error("bi-stream ended")
                    return
                now = loop.time()
                traffic.rx += len(raw) + 5
                self.last_active = now
                kind, body = decode(raw)
                body = body or {}
                if kind == "NotifySubscriberRequest":
                    info = body.get("serviceInfo") or {}
                    name = info.get("name") or body.get("serviceName") or ""
                    if "@@" in name:
                        name = name.split("@@", 1)[1]
                    s = sim.index.get(name)
                    if s is not None:
                        sim.observe(self.seen, s, changed_weight(info.get("hosts")), now)
                    sim.pushes += 1
                    answer = "NotifySubscriberResponse"
                elif kind == "ClientDetectionRequest":
                    answer = "ClientDetectionResponse"
                elif kind == "ConnectResetRequest":
                    sim.resets += 1
                    answer = "ConnectResetResponse"
                else:
                    continue
                ack = encode(answer, {"resultCode": 200, "errorCode": 0, "requestId": body.get("requestId")})
                traffic.tx += len(ack) + 5
                await self.stream.write(ack)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001
            sim.error(f"bi-stream: {e!r}")

    async def keepalive(self):
        self.checking = True
        try:
            await self.unary("HealthCheckRequest", {"headers": {}, "module": "internal"})
            self.sim.health_checks += 1
        except Exception as e:  # noqa: BLE001
            self.sim.error(f"health check: {e!r}")
        finally:
            self.checking = False

    async def close(self):
        if self.reader:
            self.reader.cancel()
        if self.stream:
            self.stream.cancel()
        if self.channel:
            await self.channel.close(grace=None)


class PollGateway:
    """M pollers (ask, then sleep the interval: gateway/src/nacos/runner.rs `poll`) sharing at
    most `conns` keep-alive connections."""

    def __init__(self, sim, interval, conns):
        self.sim = sim
        self.interval = interval
        self.seen = [0.0] * len(sim.names)
        self.conns = min(conns, len(sim.names))
        port = sim.nacos.port
        self.requests = [
            http_get(
                port,
                f"/nacos/v1/ns/instance/list?serviceName={n}&groupName={GROUP}&namespaceId=&clusters=&healthyOnly=false",
            )
            for n in sim.names
        ]
        self.heap = []
        self.workers = []
        self.open_conns = []

    async def open(self):
        loop = asyncio.get_running_loop()
        now = loop.time()
        # Every poller starts at a random point of its interval, as pollers started by a
        # config apply would drift apart.
        self.heap = [(now + random.random() * self.interval, s) for s in range(len(self.sim.names))]
        heapq.heapify(self.heap)
        for _ in range(self.conns):
            conn = await HttpConn.open(self.sim.nacos.port, self.sim.traffic)
            self.open_conns.append(conn)
            self.workers.append(asyncio.ensure_future(self.worker(conn)))

    async def worker(self, conn):
        sim, heap, interval = self.sim, self.heap, self.interval
        loop = asyncio.get_running_loop()
        late_after = interval * 0.1
        while True:
            due, s = heapq.heappop(heap)
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > late_after:
                if sim.recording:
                    sim.late += 1
                    sim.lateness += now - due
            body = None
            for attempt in range(2):
                if conn.closed:
                    try:
                        conn = await HttpConn.open(sim.nacos.port, sim.traffic)
                        self.open_conns.append(conn)
                    except Exception as e:  # noqa: BLE001
                        sim.error(f"connect: {e!r}")
                        break
                try:
                    status, body = await conn.request(self.requests[s])
                    if status != 200:
                        sim.error(f"instance list answered {status}")
                        body = None
                    break
                except (ConnectionError, TimeoutError) as e:
                    if attempt == 1 or not conn.closed:
                        sim.error(f"instance list: {e!r}")
            now = loop.time()
            if body is not None:
                sim.requests += 1
                try:
                    sim.observe(self.seen, s, changed_weight(json.loads(body).get("hosts")), now)
                except ValueError as e:
                    sim.error(f"instance list not JSON: {e}")
            heapq.heappush(heap, (now + interval, s))

    async def close(self):
        for w in self.workers:
            w.cancel()
        for c in self.open_conns:
            c.close()


# ---------------------------------------------------------------------------------------------
async def register_services(sim, instances, control):
    port = sim.nacos.port
    jobs = [(s, i) for s in range(len(sim.names)) for i in range(instances)]

    async def worker():
        conn = await HttpConn.open(port, control)
        while jobs:
            s, i = jobs.pop()
            form = {
                "serviceName": sim.names[s],
                "groupName": GROUP,
                "namespaceId": "",
                "ip": f"10.0.0.{i + 1}",
                "port": CHANGED_PORT,
                "weight": "1.0",
                "healthy": "true",
                "enabled": "true",
                "ephemeral": "false",
                "metadata": "%7B%22zone%22%3A%22a%22%7D",
            }
            status, body = await conn.request(http_form("POST", port, "/nacos/v1/ns/instance", form))
            if status != 200:
                raise RuntimeError(f"register answered {status}: {body[:200]!r}")
        conn.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    conn = await HttpConn.open(port, control)
    status, body = await conn.request(http_get(port, f"/nacos/v1/ns/instance/list?serviceName={sim.names[-1]}&groupName={GROUP}"))
    conn.close()
    hosts = json.loads(body).get("hosts") or []
    if status != 200 or len(hosts) != instances:
        raise RuntimeError(f"registered {instances} instances, the list has {len(hosts)}: {body[:200]!r}")


async def changer(sim, rate, window, quiet, control):
    """Changes the weight of the first instance of a random service `rate` times a second for
    `window` seconds; a service changed less than `quiet` s ago is avoided while another is
    free, so that most changes are seen on their own."""
    port = sim.nacos.port
    loop = asyncio.get_running_loop()
    conn = await HttpConn.open(port, control)
    last_change = [-1e9] * len(sim.names)
    start = loop.time()
    count, failed = 0, 0
    while True:
        at = start + count / rate
        if at >= start + window:
            break
        now = loop.time()
        if at > now:
            await asyncio.sleep(at - now)
        now = loop.time()
        free = [s for s in range(len(sim.names)) if now - last_change[s] >= quiet]
        s = random.choice(free) if free else min(range(len(sim.names)), key=last_change.__getitem__)
        sim.weight += 1.0
        weight = sim.weight
        last_change[s] = now
        form = {
            "serviceName": sim.names[s],
            "groupName": GROUP,
            "namespaceId": "",
            "ip": CHANGED_IP,
            "port": CHANGED_PORT,
            "weight": f"{weight:.1f}",
            "healthy": "true",
            "enabled": "true",
            "ephemeral": "false",
            "metadata": "%7B%22zone%22%3A%22a%22%7D",
        }
        raw = http_form("PUT", port, "/nacos/v1/ns/instance", form)
        sim.changes[s].append((weight, loop.time()))
        count += 1
        try:
            if conn.closed:
                conn = await HttpConn.open(port, control)
            status, _ = await conn.request(raw)
            if status != 200:
                failed += 1
        except Exception:  # noqa: BLE001
            failed += 1
    conn.close()
    return count, failed, conn.sockname


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


def derive(r):
    """The costs above the baseline. The baseline is the lower of its two measurements: what
    disturbs it is one-sided (rnacos still writing the registrations away before, cleaning up
    the connections after), never less work."""
    base = min(r["registry_baseline_before_after_pct"]) / 100
    above = r["registry_cpu_s"] - base * r["elapsed_s"]  # may be < 0 within noise
    r["registry_baseline_cpu_pct"] = round(base * 100, 3)
    r["registry_cpu_above_baseline_s"] = round(above, 4)
    r["registry_cpu_s_per_gateway_hour"] = round(above / r["elapsed_s"] / r["gateways"] * 3600, 3)
    poll = r["mode"] != "push"
    r["registry_cpu_ms_per_request"] = round(above / r["requests"] * 1000, 5) if poll and r["requests"] else None
    r["registry_cpu_ms_per_push"] = round(above / r["pushes"] * 1000, 5) if not poll and r["pushes"] else None
    return r


async def scenario(args, tmp, mode, n, m):
    interval = {"push": None, "poll1": 1.0, "poll5": 5.0}.get(mode)
    if mode.startswith("poll") and interval is None:
        interval = float(mode[4:])
    loop = asyncio.get_running_loop()
    result = {"mode": mode, "gateways": n, "services": m, "instances": args.instances, "window_s": args.window}
    building_before = others_building()
    nacos = Rnacos(tmp)
    gateways = []
    try:
        await nacos.wait_ready()
        sim = Sim(nacos, m)
        control = Traffic()
        t = time.monotonic()
        await register_services(sim, args.instances, control)
        result["register_s"] = round(time.monotonic() - t, 2)
        # The registrations settle (persistent instances: rnacos keeps writing for seconds
        # after 1 500 of them): until a second passes with under 1.5 % of a core (bounded).
        t = time.monotonic()
        for _ in range(30):
            c0 = nacos.cpu()
            await asyncio.sleep(1)
            if cpu_delta(c0, nacos.cpu()) < 0.015:
                break
        result["settle_s"] = round(time.monotonic() - t, 1)

        # The baseline: the registry with the services and the same stream of changes, and
        # nobody watching. What a scenario costs above it is the gateways' cost.
        # Measured before the gateways connect and again after they left; the mean is used.
        async def baseline():
            c0, t0 = nacos.cpu(), loop.time()
            await changer(sim, args.change_rate, args.idle, 0, control)
            return cpu_delta(c0, nacos.cpu()) / (loop.time() - t0)

        baseline_before = await baseline()
        sim.changes = [[] for _ in range(m)]

        # The gateways connect (bounded: --setup-timeout).
        c0, s0, t = nacos.cpu(), cpu_seconds(), time.monotonic()
        sem = asyncio.Semaphore(8)

        async def open_one(g):
            async with sem:
                await g.open()

        if mode == "push":
            gateways = [PushGateway(sim, args.subscribe_concurrency) for _ in range(n)]
        else:
            gateways = [PollGateway(sim, interval, args.poll_conns) for _ in range(n)]
        await asyncio.wait_for(asyncio.gather(*(open_one(g) for g in gateways)), args.setup_timeout)
        keepalive = None
        if mode == "push":

            async def keep():
                while True:
                    await asyncio.sleep(1)
                    now = loop.time()
                    for g in gateways:
                        if not g.checking and now - g.last_active >= KEEPALIVE:
                            asyncio.ensure_future(g.keepalive())

            keepalive = asyncio.ensure_future(keep())
            # The pushes that follow every subscription, until they stop (bounded).
            quiet_since, last = loop.time(), -1
            deadline = loop.time() + args.setup_timeout
            while loop.time() < deadline:
                await asyncio.sleep(0.25)
                if sim.pushes != last:
                    last, quiet_since = sim.pushes, loop.time()
                elif loop.time() - quiet_since >= 1.5:
                    break
        else:
            await asyncio.sleep(interval + 1)
        result["setup_s"] = round(time.monotonic() - t, 2)
        result["setup_registry_cpu_s"] = round(cpu_delta(c0, nacos.cpu()), 2)
        result["setup_sim_cpu_s"] = round(cpu_delta(s0, cpu_seconds()), 2)
        result["setup_pushes"] = sim.pushes

        # The measured window.
        grpc_or_http = [nacos.grpc_port if mode == "push" else nacos.port]
        wire0 = wire_bytes(grpc_or_http, set())
        base = dict(
            cpu=nacos.cpu(), sim=cpu_seconds(), machine=machine_ticks(), tx=sim.traffic.tx, rx=sim.traffic.rx,
            requests=sim.requests, pushes=sim.pushes, errors=sim.errors, hc=sim.health_checks, t=loop.time(),
        )
        sim.recording = True
        quiet = (interval or 1.0) + 1.0
        changes, change_failed, changer_addr = await changer(sim, args.change_rate, args.window, quiet, control)
        elapsed = loop.time() - base["t"]
        cpu = cpu_delta(base["cpu"], nacos.cpu())
        sim_cpu = cpu_delta(base["sim"], cpu_seconds())
        busy1, total1 = machine_ticks()
        busy0, total0 = base["machine"]
        traffic = (sim.traffic.tx - base["tx"]) + (sim.traffic.rx - base["rx"])
        wire1 = wire_bytes(grpc_or_http, {changer_addr})
        requests = sim.requests - base["requests"]
        pushes = sim.pushes - base["pushes"]
        health_checks = sim.health_checks - base["hc"]
        window_errors = sim.errors - base["errors"]
        late, lateness = sim.late, sim.lateness
        sim.recording = False
        # Let the last changes arrive; they count for latency, not for cost.
        await asyncio.sleep((interval or 0) + 2.5)
        if keepalive:
            keepalive.cancel()
        applied = len(sim.latencies)
        for g in gateways:
            await asyncio.wait_for(g.close(), 10)
        gateways = []
        sim.changes = [[] for _ in range(m)]
        await asyncio.sleep(2)
        baseline_after = await baseline()
        result["registry_baseline_before_after_pct"] = [round(baseline_before * 100, 3), round(baseline_after * 100, 3)]

        machine_cpus = os.cpu_count() or 1
        machine_busy = (busy1 - busy0) / max(1, total1 - total0) * machine_cpus  # cores busy
        expected = changes * n
        lat = sim.latencies
        result.update(
            elapsed_s=round(elapsed, 2),
            registry_cpu_pct=round(cpu / elapsed * 100, 1),
            registry_cpu_s=round(cpu, 4),
            registry_rss_kib=nacos.rss_kib(),
            bytes_per_s=round(traffic / elapsed),
            bytes_per_s_per_gateway=round(traffic / elapsed / n),
            sim_cpu_pct=round(sim_cpu / elapsed * 100, 1),
            machine_busy_cores=round(machine_busy, 2),
            other_cpu_pct=round(max(0.0, machine_busy - (cpu + sim_cpu) / elapsed) * 100, 1),
            changes=changes,
            change_failed=change_failed,
            applied=applied,
            missed=max(0, expected - applied),
            latency_p50_ms=round(pct(lat, 50) * 1000, 1) if lat else None,
            latency_p99_ms=round(pct(lat, 99) * 1000, 1) if lat else None,
            latency_max_ms=round(max(lat) * 1000, 1) if lat else None,
            requests=requests,
            requests_per_s=round(requests / elapsed, 1),
            pushes=pushes,
            pushes_per_s=round(pushes / elapsed, 1),
            health_checks=health_checks,
            errors=window_errors,
            errors_total=sim.errors,
            error_samples=sim.error_samples,
            resets=sim.resets,
            bytes_per_request=round(traffic / requests) if mode != "push" and requests else None,
        )
        derive(result)
        if wire0 is not None and wire1 is not None:
            w = sum(v - wire0.get(k, 0) for k, v in wire1.items())
            result["wire_bytes_per_s"] = round(w / elapsed)
        if mode != "push":
            target = n * m / interval
            result["target_requests_per_s"] = round(target, 1)
            result["late_polls"] = late
            result["mean_lateness_ms"] = round(lateness / late * 1000, 1) if late else 0.0
        notes = []
        if sim_cpu / elapsed > args.sim_limit:
            notes.append(f"simulator saturated ({sim_cpu / elapsed * 100:.0f} % of a core)")
        if mode != "push" and requests < 0.9 * result["target_requests_per_s"] * elapsed:
            notes.append(f"polls {requests / elapsed:.0f}/s of {result['target_requests_per_s']:.0f}/s wanted")
        if machine_busy > machine_cpus * 0.95:
            notes.append("machine CPU saturated")
        if result["other_cpu_pct"] > 15:
            notes.append(f"other processes used {result['other_cpu_pct']:.0f} % CPU")
        building_after = others_building()
        if building_before or building_after:
            notes.append("cargo/rustc running")
        result["valid"] = not notes
        if result["missed"]:
            notes.append(f"{result['missed']} of {expected} applications not seen")
        if window_errors:
            notes.append(f"{window_errors} errors")
        result["notes"] = notes
        result["ok"] = True
        return result
    finally:
        for g in gateways:
            try:
                await asyncio.wait_for(g.close(), 10)
            except Exception:  # noqa: BLE001
                pass
        nacos.stop()


# ---------------------------------------------------------------------------------------------
def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return f"{v:,}"


def human_bytes(v):
    if v is None:
        return "—"
    for unit, div in (("MB", 1e6), ("kB", 1e3)):
        if v >= div:
            return f"{v / div:,.1f} {unit}"
    return f"{v:,.0f} B"


def crossover(results, args):
    """Where polling at 1 s (and 5 s) starts to cost the registry more than push: measured
    pairs, and the unit costs that place the crossover between and below them."""
    ok = [r for r in results if r.get("ok")]
    by = {(r["mode"], r["gateways"], r["services"]): r for r in ok}
    pairs = []
    for (mode, n, m), push in sorted(by.items(), key=lambda kv: (kv[0][1] * kv[0][2], kv[0][1])):
        if mode != "push":
            continue
        for poll_mode in ("poll1", "poll5"):
            poll = by.get((poll_mode, n, m))
            if poll:
                pairs.append(
                    {
                        "gateways": n,
                        "services": m,
                        "n_x_m": n * m,
                        "poll": poll_mode,
                        "push_registry_cpu_pct": push["registry_cpu_pct"],
                        "poll_registry_cpu_pct": poll["registry_cpu_pct"],
                        "push_cpu_s_per_gateway_hour": push["registry_cpu_s_per_gateway_hour"],
                        "poll_cpu_s_per_gateway_hour": poll["registry_cpu_s_per_gateway_hour"],
                        "push_bytes_per_s": push["bytes_per_s"],
                        "poll_bytes_per_s": poll["bytes_per_s"],
                        "valid": poll["valid"] and push["valid"],
                    }
                )

    def pick(rows):
        good = [r for r in rows if r["valid"]]
        return good or rows

    out = {"pairs": pairs}
    # A poll's cost depends on the rate (fewer polls share the registry's wake-ups): the rows of
    # the largest N, where the registry's cost is largest and best measured.
    polls = [r for r in ok if r["mode"] != "push" and r["requests"]]
    if polls:
        biggest = max(r["gateways"] for r in polls)
        polls = pick([r for r in polls if r["gateways"] == biggest])
    # A push's cost only shows above the baseline's noise with many of them: the runs with
    # the most pushes per second.
    push_rows = pick([r for r in ok if r["mode"] == "push" and r["pushes"]])
    if push_rows:
        most = max(r["pushes_per_s"] for r in push_rows)
        push_rows = [r for r in push_rows if r["pushes_per_s"] >= most / 3]
    if polls:
        out["poll_cpu_ms_per_request"] = statistics.median(r["registry_cpu_ms_per_request"] for r in polls)
        out["poll_bytes_per_request"] = statistics.median(r["bytes_per_request"] for r in polls)
    if push_rows:
        out["push_cpu_ms_per_push"] = statistics.median(r["registry_cpu_ms_per_push"] for r in push_rows)
        out["push_bytes_per_push"] = statistics.median(r["bytes_per_s"] / max(r["pushes_per_s"], 1e-9) for r in push_rows)
        out["pushes_per_gateway_s"] = statistics.median(r["pushes_per_s"] / r["gateways"] for r in push_rows)
    lines = []
    for poll_mode, label in (("poll1", "1 s"), ("poll5", "5 s")):
        per_n = {}
        for p in pairs:
            if p["poll"] == poll_mode:
                per_n.setdefault(p["gateways"], []).append(p)
        parts = []
        for n in sorted(per_n):
            ps = sorted(per_n[n], key=lambda p: p["services"])
            more = [p for p in ps if p["poll_registry_cpu_pct"] > p["push_registry_cpu_pct"]]
            less = [p for p in ps if p not in more]
            cpu = lambda p: f"{p['poll_registry_cpu_pct']} vs {p['push_registry_cpu_pct']} %"  # noqa: E731
            if not less:
                parts.append(f"N = {n}: more at every M, from M = {ps[0]['services']} ({cpu(ps[0])})")
            elif not more:
                parts.append(f"N = {n}: not more up to M = {ps[-1]['services']} ({cpu(ps[-1])})")
            elif max(p["services"] for p in less) < min(p["services"] for p in more):
                lo, hi = less[-1], more[0]
                parts.append(
                    f"N = {n}: between M = {lo['services']} ({cpu(lo)}) and M = {hi['services']} ({cpu(hi)}), "
                    f"i.e. N×M {n * lo['services']:,}–{n * hi['services']:,}"
                )
            else:
                parts.append(f"N = {n}: more at M = {', '.join(str(p['services']) for p in more)}, "
                             f"not at M = {', '.join(str(p['services']) for p in less)}")
        if parts:
            lines.append(
                f"Measured, polling at {label} against push (registry CPU % in the window; both rows have the same "
                f"changes): " + "; ".join(parts) + "."
            )
    if "poll_cpu_ms_per_request" in out and "push_cpu_ms_per_push" in out:
        c_poll, c_push = out["poll_cpu_ms_per_request"], out["push_cpu_ms_per_push"]
        rate = out["pushes_per_gateway_s"]
        per_req = [r["registry_cpu_ms_per_request"] for r in polls]
        lines.append(
            f"Unit costs (registry, above the baseline): a poll answered {c_poll:.3f} CPU-ms (median of the "
            f"N = {polls[0]['gateways']} rows, {min(per_req):.3f}–{max(per_req):.3f}: less at higher rates, more at "
            f"smaller N) and "
            f"{out['poll_bytes_per_request']:,.0f} B; a push delivered and acked {c_push:.3f} CPU-ms and "
            f"{out['push_bytes_per_push']:,.0f} B. A polling gateway makes M / interval polls a second; a "
            f"pushed one gets a push per change of a service it watches ({rate:.1f}/s here, at "
            f"{args.change_rate:g} changes/s fleet-wide), whatever its M."
        )
        if c_poll > 0 and c_push > 0:
            m1 = rate * c_push / c_poll
            out["crossover_services_per_gateway_poll1"] = m1
            out["crossover_services_per_gateway_poll5"] = m1 * 5
            lines.append(
                f"Both are linear in N, so the crossover is a number of services per gateway: polling at 1 s costs "
                f"more than push once M > {rate:.1f} × {c_push:.3f} / {c_poll:.3f} ≈ {m1:.1f} (N×M > {m1:.1f}·N), "
                f"at 5 s once M > {m1 * 5:.1f}; in general once M / interval > pushes per gateway-second × "
                f"{c_push / c_poll:.2f}."
            )
        elif c_push <= 0:
            out["crossover_services_per_gateway_poll1"] = 0
            lines.append("The pushes' own cost was within the baseline's noise.")
    out["statement"] = " ".join(lines)
    return out


def markdown(results, cross, meta):
    rows = [
        "| mode | N | M | registry CPU % | registry CPU-s per gateway-hour | bytes/s | bytes/s per gateway "
        "| wire bytes/s | change→applied p50 / p99 (ms) | polls or pushes /s | simulator CPU % | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    setup = [
        "| N | M | connect + subscribe (s) | registry CPU-s | pushes during it | simulator CPU-s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        if not r.get("ok"):
            rows.append(f"| {r['mode']} | {r['gateways']} | {r['services']} | | | | | | | | | FAILED: {r.get('error', '')} |")
            continue
        rate = (
            f"{fmt(r['pushes_per_s'])} pushes"
            if r["mode"] == "push"
            else f"{fmt(r['requests_per_s'], 0)} of {fmt(r['target_requests_per_s'], 0)}"
        )
        notes = "; ".join(r["notes"]) if r["notes"] else ""
        if not r["valid"]:
            notes = "⚠ " + notes
        rows.append(
            f"| {r['mode']} | {r['gateways']} | {r['services']} | {fmt(r['registry_cpu_pct'])} "
            f"| {fmt(r['registry_cpu_s_per_gateway_hour'], 2)} | {human_bytes(r['bytes_per_s'])} "
            f"| {human_bytes(r['bytes_per_s_per_gateway'])} | {human_bytes(r.get('wire_bytes_per_s'))} "
            f"| {fmt(r['latency_p50_ms'], 0)} / {fmt(r['latency_p99_ms'], 0)} | {rate} "
            f"| {fmt(r['sim_cpu_pct'], 0)} | {notes} |"
        )
        if r["mode"] == "push":
            setup.append(
                f"| {r['gateways']} | {r['services']} | {fmt(r['setup_s'])} | {fmt(r['setup_registry_cpu_s'], 2)} "
                f"| {fmt(r['setup_pushes'])} | {fmt(r['setup_sim_cpu_s'], 1)} |"
            )
    head = (
        f"# Nacos discovery at scale — {meta['stamp']}\n\n"
        f"Machine: {meta['cpus']} cores; rnacos {meta['rnacos_version']}; simulator Python {meta['python']} "
        f"(grpcio {meta['grpcio']}, protobuf {meta['protobuf']}), on the same cores. "
        f"{meta['instances']} instances per service; {meta['change_rate']:g} weight changes/s on random services; "
        f"{meta['window']:g} s measured window per row; poll connections per gateway ≤ {meta['poll_conns']}. "
        f"Registry CPU % is of one core, in the window; per gateway-hour is above the baseline (the same "
        f"changes with no gateway). Bytes are counted at the client; wire = TCP payload (ss).\n"
    )
    text = head + "\n" + "\n".join(rows) + "\n\n" + cross["statement"] + "\n"
    if len(setup) > 2:
        text += "\nPush set-up (not in the window): every gateway connects and subscribes every service.\n\n"
        text += "\n".join(setup) + "\n"
    return text


def rnacos_version():
    try:
        out = subprocess.run([rnacos_binary(), "-V"], capture_output=True, text=True, timeout=5).stdout.strip()
        return out.split()[-1] if out else "?"
    except Exception:  # noqa: BLE001
        return "?"


def disturbed(r):
    return bool(r.get("ok")) and (r["other_cpu_pct"] > 15 or "cargo/rustc running" in r["notes"])


async def wait_quiet(deadline):
    """Until no cargo/rustc runs and the machine is idle for 3 s (nothing of ours runs between
    rows), or the deadline."""
    while time.monotonic() < deadline:
        if not others_building():
            b0, t0 = machine_ticks()
            await asyncio.sleep(3)
            b1, t1 = machine_ticks()
            if (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1) < 0.15 and not others_building():
                return True
        await asyncio.sleep(10)
    return False


async def main(args):
    modes = args.modes.split(",")
    plan = [(mode, n, m) for m in args.services for n in args.gateways for mode in modes]
    for row in args.rows.split(",") if args.rows else []:
        mode, size = row.split(":")
        n, m = size.split("x")
        plan.append((mode, int(n), int(m)))
    tmp = tempfile.mkdtemp(prefix="tidegate-nacos-scale-")
    results = []
    started = time.monotonic()
    if args.wait_quiet > 0 and not await wait_quiet(time.monotonic() + args.wait_quiet):
        print("   the machine did not get quiet; measuring anyway", file=sys.stderr, flush=True)
    try:
        for i, (mode, n, m) in enumerate(plan):
            print(f"== [{i + 1}/{len(plan)}] {mode}: {n} gateways × {m} services", file=sys.stderr, flush=True)
            budget = args.setup_timeout * 2 + args.window + 60
            attempt = 0
            while True:
                attempt += 1
                try:
                    r = await asyncio.wait_for(scenario(args, tmp, mode, n, m), budget)
                except Exception as e:  # noqa: BLE001
                    r = {"mode": mode, "gateways": n, "services": m, "ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
                r["attempts"] = attempt
                left = started + args.budget - time.monotonic()
                if not disturbed(r) or attempt > args.retries or left < 60:
                    break
                print(f"   disturbed ({'; '.join(r['notes'])}); again once the machine is quiet", file=sys.stderr, flush=True)
                await wait_quiet(time.monotonic() + min(left - 60, 300))
            results.append(r)
            if r.get("ok"):
                print(
                    f"   registry CPU {r['registry_cpu_pct']} %, {r['registry_cpu_s_per_gateway_hour']} CPU-s/gateway-h, "
                    f"{human_bytes(r['bytes_per_s'])}/s, p50/p99 {r['latency_p50_ms']}/{r['latency_p99_ms']} ms, "
                    f"sim CPU {r['sim_cpu_pct']} %, setup {r['setup_s']} s {'; '.join(r['notes'])}",
                    file=sys.stderr,
                    flush=True,
                )
            else:
                print(f"   FAILED: {r['error']}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results, time.monotonic() - started


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--gateways", type=ints, default=[1, 10, 100], help="N values (default 1,10,100)")
    ap.add_argument("--services", type=ints, default=[50, 500], help="M values (default 50,500)")
    ap.add_argument("--modes", default="push,poll1,poll5", help="push, poll1, poll5 (pollS: any seconds)")
    ap.add_argument("--rows", default="", help="extra rows after the matrix: mode:NxM,... (e.g. push:100x5)")
    ap.add_argument("--window", type=float, default=20, help="measured seconds per scenario (default 20)")
    ap.add_argument("--instances", type=int, default=3, help="instances per service (default 3)")
    ap.add_argument("--change-rate", type=float, default=4, help="weight changes per second (default 4)")
    ap.add_argument("--poll-conns", type=int, default=4, help="HTTP connections per polling gateway (default 4)")
    ap.add_argument("--subscribe-concurrency", type=int, default=16, help="subscriptions in flight per gateway")
    ap.add_argument("--idle", type=float, default=5, help="seconds of the baseline (changes, no gateways)")
    ap.add_argument("--setup-timeout", type=float, default=180, help="bound on connecting + subscribing")
    ap.add_argument("--sim-limit", type=float, default=0.85, help="simulator CPU (cores) above which it is saturated")
    ap.add_argument("--out", default=os.path.join(ROOT, "load-tests", "results"), help="where the JSON goes")
    ap.add_argument("--quick", action="store_true", help="smoke size: 5 gateways × 20 services, 4 s windows")
    ap.add_argument("--retries", type=int, default=2, help="re-runs of a row disturbed by other load (default 2)")
    ap.add_argument("--budget", type=float, default=1500, help="no re-runs after this many seconds (default 1500)")
    ap.add_argument("--wait-quiet", type=float, default=0, help="first wait up to SECS for a quiet machine")
    ap.add_argument("--report", metavar="JSON", help="only re-render the Markdown (and crossover) of a results file")
    args = ap.parse_args()
    if args.quick:
        args.gateways, args.services, args.window, args.idle = [5], [20], 4.0, 2.0
        args.retries = 0
    return args


def rerender(args):
    """--report A.json[,B.json...]: recompute the derived numbers and the crossover and write
    the Markdown; several files are merged into A-merged.{json,md}, each row taken from the
    file where it was least disturbed (valid first, then the least CPU used by others)."""
    files = args.report.split(",")
    datas = []
    for name in files:
        with open(name) as f:
            datas.append(json.load(f))
    data = datas[0]
    if len(datas) > 1:
        rows = {}
        for d in datas:
            for r in d["results"]:
                key = (r["mode"], r["gateways"], r["services"])
                rank = (not r.get("ok"), not r.get("valid"), r.get("other_cpu_pct", 1e9))
                if key not in rows or rank < rows[key][0]:
                    rows[key] = (rank, r)
        order = []
        for d in datas:
            for r in d["results"]:
                key = (r["mode"], r["gateways"], r["services"])
                if key not in order:
                    order.append(key)
        data = dict(data, results=[rows[k][1] for k in order])
        data["meta"] = dict(data["meta"], merged_from=[os.path.basename(f) for f in files])
        args.report = re.sub(r"\.json$", "", files[0]) + "-merged.json"
    for r in data["results"]:
        if r.get("ok"):
            derive(r)
    args.change_rate = data["meta"]["change_rate"]
    data["crossover"] = crossover(data["results"], args)
    md = markdown(data["results"], data["crossover"], data["meta"])
    with open(args.report, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    with open(re.sub(r"\.json$", "", args.report) + ".md", "w") as f:
        f.write(md)
    print(md)


def run():
    args = parse_args()
    if args.report:
        return rerender(args)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)
    if not os.path.exists(rnacos_binary()) and not shutil.which(rnacos_binary()):
        sys.exit(f"rnacos not found ({rnacos_binary()}): scripts/rnacos.sh install, or set RNACOS_BIN")
    stamp = time.strftime("%Y-%m-%dT%H%M%SZ", time.gmtime())
    try:
        results, took = asyncio.run(main(args))
    finally:
        _kill_all()
    meta = {
        "stamp": stamp,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "rnacos_version": rnacos_version(),
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "protobuf": google.protobuf.__version__,
        "instances": args.instances,
        "change_rate": args.change_rate,
        "window": args.window,
        "poll_conns": args.poll_conns,
        "quick": args.quick,
        "runtime_s": round(took, 1),
        "argv": sys.argv[1:],
        "bytes": "client-side: gRPC messages + 5 B framing each, HTTP bytes as on the socket; "
        "wire_bytes_per_s: kernel per-socket TCP payload (ss), changer connection excluded",
    }
    cross = crossover(results, args)
    md = markdown(results, cross, meta)
    print(md)
    os.makedirs(args.out, exist_ok=True)
    name = f"nacos-scale-{stamp}{'-quick' if args.quick else ''}"
    with open(os.path.join(args.out, name + ".json"), "w") as f:
        json.dump({"meta": meta, "results": results, "crossover": cross}, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, name + ".md"), "w") as f:
        f.write(md)
    print(f"results written to {os.path.join(args.out, name)}.{{json,md}} ({took:.0f} s)", file=sys.stderr)
    # Errors fail the run (numbers are not judged): a scenario that failed, or saw nothing.
    bad = [r for r in results if not r.get("ok") or not r.get("applied") or r.get("errors_total")]
    for r in bad:
        print(f"FAILED: {r['mode']} {r['gateways']}×{r['services']}: {r.get('error') or r.get('error_samples') or 'no change applied'}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    run()

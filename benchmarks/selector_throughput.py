"""Selector throughput: requests/s and p50/p99 latency at 16 concurrent connections, on loopback, with feedback.

Starts, through the same wrapper (``caig.serving.server.serve``: one worker, the same uvicorn and kserve
settings, per-request logging off), seven servers: (1) a no-op KServe model under both of the selector's model
names (answers a fixed prediction: the ceiling of any model on this server); the same no-op adding one part
of the selector's per-request cost at a time, each the ceiling of a selector built that way: (2) answering
from the server's thread pool as the selector's models do (to keep store calls off the event loop), (3) also
reading the request's counts hash from Redis with redis-py there, (4) reading it with redis.asyncio on the
event loop instead; (5) ``caig serve selector`` on a small world with RM-like priors and SQLite state (the
local profile), and (6) the same selector with Redis state, its state settings taken from the production
profile (counts from the replica's snapshot, refreshed every ``bandit.refresh_ms``), on a private loopback
redis-server, and (7) that selector with ``refresh_ms`` 0 (a Redis read per selection in a worker thread, as
before the snapshot). Every target gets the same stream: ``--feedback-share`` (10%)
of the requests are feedback reports (fresh event ids) to ``creative-feedback``, the rest selections, mixed.
Each is driven by the same load generator, a separate
lean process (uvloop, raw HTTP/1.1 keep-alive over a socket per connection, one request in flight per
connection), over slices of the same requests, the targets alternated round by round (order reversed every
other round) so that other load on a shared machine hits each alike. Records the load average, each server's,
Redis's and the load generator's CPU time per request (/proc), the CPU time other processes took while each
target ran, the impressions each store counted against the feedback sent, and, in-process over the same kind
of mix, one ``select`` call's cost and the propensity estimate's part of it, cache on and off. Writes
benchmarks/results/selector_throughput.json.

    .venv/bin/python benchmarks/selector_throughput.py            # 20,000 requests per target, 6 rounds
    .venv/bin/python benchmarks/selector_throughput.py --quick    # 6,000 per target, 4 rounds (~1 min)
    .venv/bin/python benchmarks/selector_throughput.py --redis-aof  # Redis persisting as production does
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from provenance import provenance

ROOT = Path(__file__).resolve().parents[1]
SMALL_WORLD = [
    "world.n_products=48",
    "world.n_creatives_per_product=5",
    "world.n_events=400000",
    "world.n_days=7",
    "world.image_size=64",
    "world.contact_sheet_products=4",
]
SEGMENTS = ["young", "family", "professional", "senior"]
GOAL_P99_MS = 10.0
GOAL_RATIO = 0.85
SELECTOR, FEEDBACK = "creative-selector", "creative-feedback"
SELECT_PATH, FEEDBACK_PATH = f"/v1/models/{SELECTOR}:predict", f"/v1/models/{FEEDBACK}:predict"
# the production profile's bandit fields that shape the Redis state path (its URL, user, password, host and
# Feast provider are the cluster's; the benchmark's Redis is a private loopback server)
PRODUCTION_STATE_FIELDS = (
    "store",
    "redis_prefix",
    "dedupe_window_s",
    "feedback_log_maxlen",
    "store_timeout_s",
    "propensity_samples",
    "propensity_cache",
    "refresh_ms",
)
# the Redis selector as it was before the counts snapshot: Redis read on every selection, in a worker thread
PER_REQUEST_PREFIX = "caig:bandit:per-request:"


# ---- the no-op server (a subprocess of this script) ----------------------------------------------------


NOOP_VARIANTS = {
    "noop": "answers at once on the event loop",
    "noop_thread_hop": "answers from the server's thread pool (asyncio.to_thread), as the selector's models do",
    "noop_redis_read": "reads its (product, segment)'s counts hash from Redis with redis-py in the thread pool, "
    "as the Redis selector does, then answers",
    "noop_redis_read_async": "reads the same hash with redis.asyncio on the event loop (no thread), then answers",
}


def serve_noop(port: int, variant: str, redis_url: str) -> None:
    """Two KServe models that do no selector work, under the selector's two names (so the same requests reach
    them), served exactly as ``caig serve selector`` serves its models; ``variant`` (``NOOP_VARIANTS``) adds
    one part of the selector's per-request cost at a time: the thread hop, then a Redis read. Each is the
    ceiling of a selector built that way."""
    from caig.serving.kserve_compat import import_kserve
    from caig.serving.server import serve

    kserve = import_kserve()
    prefix = redis_prefix()

    class Noop(kserve.Model):
        def __init__(self, name: str, answer: dict):
            super().__init__(name)
            self.answer = answer
            self.redis = None

        def load(self) -> bool:
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            return self.answer

    def counts_key(payload) -> str:
        instance = payload["instances"][0]
        return f"{prefix}counts:{instance['product_id']}:{instance['segment']}"

    class ThreadHop(Noop):
        async def predict(self, payload, headers=None):
            return await asyncio.to_thread(lambda: self.answer)

    class RedisRead(Noop):
        def load(self) -> bool:
            import redis

            self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
            return super().load()

        async def predict(self, payload, headers=None):
            key = counts_key(payload)
            return await asyncio.to_thread(lambda: (self.redis.hgetall(key), self.answer)[1])

    class AsyncRedisRead(Noop):
        async def predict(self, payload, headers=None):
            if self.redis is None:  # made on the server's loop
                import redis.asyncio

                self.redis = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)
            await self.redis.hgetall(counts_key(payload))
            return self.answer

    model = {
        "noop": Noop,
        "noop_thread_hop": ThreadHop,
        "noop_redis_read": RedisRead,
        "noop_redis_read_async": AsyncRedisRead,
    }[variant]
    selection = {"predictions": [{"creative_id": "C000000", "propensity": 1.0, "policy": "noop"}]}
    models = [model(SELECTOR, selection), model(FEEDBACK, {"predictions": ["recorded"]})]
    for m in models:
        m.load()
    serve(models, host="127.0.0.1", port=port)


# ---- the load generator (a subprocess of this script; imports nothing heavy) ---------------------------


class KeepAliveClient(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection sending its requests in turn, each once the last answer is complete.

    Parses only what it needs (status line, Content-Length) straight from the socket's bytes: the client's
    own CPU time is taken from the same cores as the server's.
    """

    def __init__(self, requests: list[bytes], latencies: dict[bool, list[float]], done: asyncio.Future):
        self.requests = requests
        self.latencies = latencies  # {is a feedback request: its latencies}
        self.done = done
        self.errors = 0
        self.next = 0
        self.sent_at = 0.0
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def send_next(self) -> None:
        if self.next == len(self.requests):
            if not self.done.done():
                self.done.set_result(None)
            return
        request = self.requests[self.next]
        self.next += 1
        self.sent_at = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop > 0 else len(head)]) if start > 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        request = self.requests[self.next - 1]
        self.latencies[request.startswith(FEEDBACK_REQUEST)].append(time.perf_counter() - self.sent_at)
        if not head.startswith(b"http/1.1 200"):
            self.errors += 1
        del self.buffer[: end + 4 + length]
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection closed after {self.next} requests: {exc}"))


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of a process so far, to the nanosecond (Linux /proc/PID/task/*/schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used so far, all cores together (/proc/stat, in ticks)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


FEEDBACK_REQUEST = f"POST {FEEDBACK_PATH} ".encode()


def http_request(line: bytes) -> bytes:
    """One request line of the load generator's input (``PATH BODY``) as HTTP/1.1 bytes."""
    path, body = line.split(b" ", 1)
    head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" % path
    return head + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def _drive(port: int, lines: list[bytes], connections: int, server_pid: int, store_pid: int) -> dict:
    loop = asyncio.get_running_loop()
    requests = [http_request(line) for line in lines]
    latencies: dict[bool, list[float]] = {False: [], True: []}
    clients = []
    for i in range(connections):
        done = loop.create_future()
        _, client = await loop.create_connection(
            lambda r=requests[i::connections], d=done: KeepAliveClient(r, latencies, d), "127.0.0.1", port
        )
        clients.append(client)
    store = cpu_seconds(store_pid) if store_pid else 0.0
    server, busy, cpu = cpu_seconds(server_pid), machine_busy_seconds(), time.process_time()
    start = time.perf_counter()
    for client in clients:
        client.send_next()
    await asyncio.gather(*(c.done for c in clients))
    seconds = time.perf_counter() - start
    cpu, server = time.process_time() - cpu, cpu_seconds(server_pid) - server
    busy = machine_busy_seconds() - busy
    store = cpu_seconds(store_pid) - store if store_pid else 0.0
    for client in clients:
        client.transport.close()
    return {
        "seconds": seconds,
        "server_cpu_s": server,
        "client_cpu_s": cpu,
        "store_cpu_s": store,  # the Redis server's, for the Redis target
        # what the rest of the machine used meanwhile (approximate: /proc/stat counts 10 ms ticks)
        "other_cpu_s": max(0.0, busy - server - cpu - store),
        "errors": sum(c.errors for c in clients),
        "latencies_ms": [1000 * x for x in latencies[False] + latencies[True]],
        "feedback_latencies_ms": [1000 * x for x in latencies[True]],
    }


def run_load(port: int, connections: int, server_pid: int, store_pid: int) -> None:
    """Load generator mode: requests one per stdin line (``PATH BODY``); one JSON result on stdout."""
    lines = sys.stdin.buffer.read().splitlines()
    drive = _drive(port, lines, connections, server_pid, store_pid)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(drive)
    else:
        result = uvloop.run(drive)
    json.dump(result, sys.stdout)


def load(port: int, lines: list[bytes], connections: int, server_pid: int, store_pid: int = 0) -> dict:
    """Run the load generator in its own process (a clean, small interpreter) over ``lines``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--load", str(port), str(connections)]
    done = subprocess.run(
        [*cmd, str(server_pid), str(store_pid)], input=b"\n".join(lines), capture_output=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-2000:]}")
    return json.loads(done.stdout)


# ---- servers and measurement ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], model: str, port: int, log: Path) -> subprocess.Popen:
    """Start one server subprocess and wait until its model is ready."""
    import httpx

    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models/{model}", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop(proc)
    raise RuntimeError(f"server not ready in 120 s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def summarise(runs: list[dict]) -> dict:
    import numpy as np

    lat = np.concatenate([np.asarray(run["latencies_ms"]) for run in runs])
    feedback = np.concatenate([np.asarray(run["feedback_latencies_ms"]) for run in runs])
    seconds = sum(run["seconds"] for run in runs)
    return {
        "requests": len(lat),
        "feedback_requests": len(feedback),
        "errors": sum(run["errors"] for run in runs),
        "seconds": seconds,
        "requests_per_s": len(lat) / seconds,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "p999_ms": float(np.percentile(lat, 99.9)),
        "mean_ms": float(lat.mean()),
        "feedback_p50_ms": float(np.percentile(feedback, 50)) if len(feedback) else None,
        "feedback_p99_ms": float(np.percentile(feedback, 99)) if len(feedback) else None,
        "requests_per_s_by_round": [len(run["latencies_ms"]) / run["seconds"] for run in runs],
        "p99_ms_by_round": [float(np.percentile(run["latencies_ms"], 99)) for run in runs],
        "server_cpu_ms_per_request": 1000 * sum(run["server_cpu_s"] for run in runs) / len(lat),
        "store_cpu_ms_per_request": 1000 * sum(run["store_cpu_s"] for run in runs) / len(lat),
        "client_cpu_ms_per_request": 1000 * sum(run["client_cpu_s"] for run in runs) / len(lat),
        "other_processes_cpu_cores": sum(run["other_cpu_s"] for run in runs) / seconds,
        "other_processes_cpu_cores_by_round": [run["other_cpu_s"] / run["seconds"] for run in runs],
    }


def measure_interleaved(
    servers: dict[str, tuple[int, int, int]],
    lines: list[bytes],
    warm: list[bytes],
    connections: int,
    rounds: int,
) -> tuple[dict, list[list[str]]]:
    """Drive every server (port, server pid, store pid) in turn, ``rounds`` times over slices of the requests,
    the order reversed every other round; per-target totals over all rounds, and the order of each round."""
    for port, pid, store_pid in servers.values():
        load(port, warm, connections, pid, store_pid)
    parts: dict[str, list[dict]] = {name: [] for name in servers}
    orders = []
    for r in range(rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(servers))
        orders.append(order)
        for name in order:
            port, pid, store_pid = servers[name]
            parts[name].append(load(port, lines[r::rounds], connections, pid, store_pid))
    return {name: summarise(runs) for name, runs in parts.items()}, orders


# ---- setup ---------------------------------------------------------------------------------------------


def prepare_run(directory: Path) -> dict[str, list[str]]:
    """A small world and RM-like priors in a run directory; returns each product's creative ids."""
    import numpy as np
    import pandas as pd

    from caig.bandit.arena import read_logged_events
    from caig.bandit.config import SimulateConfig
    from caig.bandit.simulate import empirical_priors
    from caig.profile import load_profile
    from caig.world.build import build_world

    profile = load_profile("local", SMALL_WORLD)
    build_world(profile.world, directory / "world", seed=0, pair_rule=profile.data.pairs)
    (directory / "features").mkdir()
    events = read_logged_events(directory / "world")
    empirical_priors(events, SimulateConfig(), np.random.default_rng(0)).to_parquet(
        directory / "features" / "rm_priors.parquet"
    )
    creatives = pd.read_parquet(directory / "world" / "creatives.parquet")
    return {p: sorted(g.creative_id) for p, g in creatives.groupby("product_id")}


def request_mix(
    creatives: dict[str, list[str]], n: int, feedback_share: float, seed: int, tag: str
) -> list[dict]:
    """``n`` requests, a ``feedback_share`` of them (exactly, shuffled in) feedback reports with fresh event ids
    (an impression of one of the product's creatives, clicked 5% of the time); the rest selections."""
    rng = random.Random(seed)
    products = sorted(creatives)
    n_feedback = round(n * feedback_share)
    kinds = [True] * n_feedback + [False] * (n - n_feedback)
    rng.shuffle(kinds)
    mix = []
    for i, is_feedback in enumerate(kinds):
        product, segment = rng.choice(products), rng.choice(SEGMENTS)
        if is_feedback:
            event = {
                "event_id": f"{tag}-{i}",
                "product_id": product,
                "segment": segment,
                "creative_id": rng.choice(creatives[product]),
                "clicked": rng.random() < 0.05,
                "propensity": round(rng.uniform(0.05, 0.9), 4),
            }
            mix.append({"feedback": event})
        else:
            mix.append({"select": {"product_id": product, "segment": segment}})
    return mix


def request_lines(mix: list[dict]) -> list[bytes]:
    """The load generator's input: ``PATH BODY`` per request, V1 bodies of one instance."""
    lines = []
    for request in mix:
        path, instance = (
            (FEEDBACK_PATH, request["feedback"])
            if "feedback" in request
            else (SELECT_PATH, request["select"])
        )
        lines.append(f"{path} {json.dumps({'instances': [instance]})}".encode())
    return lines


def production_state_overrides() -> list[str]:
    """``--set`` overrides giving a local-profile selector the production profile's state settings."""
    from caig.profile import load_profile

    bandit = load_profile("production").bandit
    return [f"bandit.{name}={json.dumps(getattr(bandit, name))}" for name in PRODUCTION_STATE_FIELDS]


def redis_prefix() -> str:
    """The production profile's Redis key prefix (the Redis target's counts live under it)."""
    from caig.profile import load_profile

    return load_profile("production").bandit.redis_prefix


def start_redis(directory: Path, aof: bool) -> tuple[subprocess.Popen, int]:
    """A private redis-server on a free loopback port, with production's memory policy; persistence off
    unless ``aof`` (then production's ``appendonly yes`` + ``appendfsync always``)."""
    import redis

    port = free_port()
    persistence = ["--appendonly", "yes", "--appendfsync", "always"] if aof else ["--appendonly", "no"]
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", *persistence]
    cmd += ["--maxmemory", "2560mb", "--maxmemory-policy", "noeviction", "--dir", str(directory)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):
            if redis.Redis(port=port).ping():
                return proc, port
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError("redis-server did not answer in 30 s")


def in_process_costs(run: Path, mix: list[dict], redis_url: str) -> dict:
    """The selector's work without HTTP, over the benchmark's own request mix (feedback applied as it comes):
    one ``select`` call's cost (SQLite and Redis state), and the propensity estimate's share of it with the
    cache on and off, timed around ``PropensityCache.probabilities``."""
    import numpy as np

    from caig.bandit.config import BanditConfig
    from caig.bandit.selector import build_selector
    from caig.profile import load_profile

    out = {}
    production = load_profile("production").bandit
    fields = {name: getattr(production, name) for name in PRODUCTION_STATE_FIELDS}
    variants = {
        "sqlite": BanditConfig(seed=0, sqlite_path=str(run / "inproc.sqlite")),
        "sqlite_no_propensity_cache": BanditConfig(
            seed=0, sqlite_path=str(run / "inproc2.sqlite"), propensity_cache=0
        ),
        "redis": BanditConfig(**{**fields, "seed": 0, "redis_url": redis_url, "redis_prefix": "inproc:"}),
        "redis_per_request": BanditConfig(
            **{**fields, "seed": 0, "redis_url": redis_url, "redis_prefix": "inproc3:", "refresh_ms": 0}
        ),
        "redis_no_propensity_cache": BanditConfig(
            **{**fields, "seed": 0, "redis_url": redis_url, "redis_prefix": "inproc2:", "propensity_cache": 0}
        ),
    }
    for name, config in variants.items():
        selector = build_selector(config, run)
        cache = selector.propensities
        estimate = cache.probabilities
        spent, spent_cpu = [], []

        def timed(alpha, beta, estimate=estimate, spent=spent, spent_cpu=spent_cpu):
            start, cpu = time.perf_counter(), time.thread_time()
            probs = estimate(alpha, beta)
            spent_cpu.append(time.thread_time() - cpu)
            spent.append(time.perf_counter() - start)
            return probs

        cache.probabilities = timed
        selects, feedbacks, select_cpu = [], [], []
        for request in mix:
            start, cpu = time.perf_counter(), time.thread_time()
            if "select" in request:
                selector.select(request["select"]["product_id"], request["select"]["segment"])
                selects.append(time.perf_counter() - start)
                select_cpu.append(time.thread_time() - cpu)
            else:
                selector.feedback([request["feedback"]])
                feedbacks.append(time.perf_counter() - start)
        selector.close()
        sel, fb, prop, sel_cpu = (np.array(x) * 1e6 for x in (selects, feedbacks, spent, select_cpu))
        prop_cpu = np.array(spent_cpu) * 1e6
        estimates = prop_cpu > 20  # a cache hit is a dict lookup (~1 us); an estimate is 100s of us
        out[name] = {
            "select_calls": len(sel),
            "feedback_calls": len(fb),
            "select_p50_us": float(np.percentile(sel, 50)),
            "select_p99_us": float(np.percentile(sel, 99)),
            "select_mean_us": float(sel.mean()),
            "select_cpu_mean_us": float(sel_cpu.mean()),
            "feedback_p50_us": float(np.percentile(fb, 50)) if len(fb) else None,
            "feedback_mean_us": float(fb.mean()) if len(fb) else None,
            "propensity_mean_us_per_select": float(prop.mean()),
            "propensity_cpu_mean_us_per_select": float(prop_cpu.mean()),
            "propensity_cpu_us_per_request": float(prop_cpu.sum() / len(mix)),
            "propensity_cpu_share_of_select": float(prop_cpu.sum() / sel_cpu.sum()),
            "propensity_estimates": int(estimates.sum()),
            "propensity_estimate_cpu_p50_us": float(np.percentile(prop_cpu[estimates], 50))
            if estimates.any()
            else None,
        }
    return out


def count_check(run: Path, redis_port: int, prefix: str, sent: int) -> dict:
    """Impressions each store counted against the distinct feedback events sent to it (warmup included)."""
    import sqlite3

    import redis

    client = redis.Redis(port=redis_port, decode_responses=True)

    def impressions(prefix: str) -> int:
        keys = client.scan_iter(match=f"{prefix}counts:*", count=1000)
        return sum(int(v) for key in keys for f, v in client.hgetall(key).items() if f.endswith("|n"))

    counted = impressions(prefix)
    with contextlib.closing(sqlite3.connect(run / "bandit" / "state.sqlite")) as db:
        sqlite = db.execute("SELECT COALESCE(SUM(impressions), 0) FROM counts").fetchone()[0]
    return {
        "feedback_events_sent": sent,
        "redis_impressions_counted": counted,
        "redis_per_request_impressions_counted": impressions(PER_REQUEST_PREFIX),
        "sqlite_impressions_counted": sqlite,
        # every connection Redis accepted during the benchmark (the in-process part and this check included):
        # a handful means pooled connections, not one per request
        "redis_connections_received": client.info("stats")["total_connections_received"],
    }


def start_servers(run: Path, redis_url: str, redis_pid: int) -> tuple[dict[str, tuple[int, int, int]], list]:
    caig = [sys.executable, "-m", "caig", "serve", "selector", "--run", str(run), "--set", "bandit.seed=0"]
    noop = [sys.executable, str(Path(__file__).resolve()), "--noop"]
    redis_state = [f"--set={o}" for o in [*production_state_overrides(), f"bandit.redis_url={redis_url}"]]
    targets = {
        **{
            name: ([*noop, name, redis_url, "--serve-noop"], [], redis_pid if "redis" in name else 0)
            for name in NOOP_VARIANTS
        },
        "selector_sqlite": (caig, [], 0),
        "selector_redis": (caig, redis_state, redis_pid),
        "selector_redis_per_request": (
            caig,
            [
                *redis_state,
                "--set=bandit.refresh_ms=0",
                f"--set=bandit.redis_prefix={json.dumps(PER_REQUEST_PREFIX)}",
            ],
            redis_pid,
        ),
    }
    servers, procs = {}, []
    try:
        for name, (cmd, extra, store_pid) in targets.items():
            port = free_port()
            full = [*cmd, str(port)] if name.startswith("noop") else [*cmd, "--port", str(port), *extra]
            procs.append(start(full, SELECTOR, port, run / f"{name}.log"))
            servers[name] = (port, procs[-1].pid, store_pid)
    except BaseException:
        for proc in procs:
            stop(proc)
        raise
    return servers, procs


def vs_noop(results: dict, name: str) -> dict:
    import numpy as np

    noop, target = results["noop"], results[name]
    paired = [
        s / n for s, n in zip(target["requests_per_s_by_round"], noop["requests_per_s_by_round"], strict=True)
    ]
    return {
        "throughput": target["requests_per_s"] / noop["requests_per_s"],
        "throughput_by_round": paired,
        "throughput_median_of_rounds": float(np.median(paired)),
        "cpu_bound_throughput": noop["server_cpu_ms_per_request"] / target["server_cpu_ms_per_request"],
        "p99": target["p99_ms"] / noop["p99_ms"],
    }


def report(args: argparse.Namespace, results: dict, orders: list, extra: dict) -> dict:
    record = provenance()
    ratios = {name: vs_noop(results, name) for name in results if name != "noop"}
    redis = results["selector_redis"]
    return {
        **record,
        "benchmark": "selector_throughput",
        "machine": {**record["machine"], "python": platform.python_version()},
        "connections": args.connections,
        "requests_per_target": args.requests,
        "feedback_share": args.feedback_share,
        "warmup_requests": args.warmup,
        "rounds": args.rounds,
        "round_orders": orders,
        "protocol": "KServe V1 over HTTP/1.1 keep-alive on 127.0.0.1; selections to creative-selector, feedback "
        "(one impression report, fresh event_id, 5% clicked) to creative-feedback, mixed in the same stream",
        "servers": "caig.serving.server.serve for every target: 1 worker, uvloop, httptools, per-request "
        "logging off, gc.freeze after load; the no-ops serve both model names",
        "noop_variants": NOOP_VARIANTS,
        "state": {
            "selector_sqlite": "local profile: SQLite (WAL) file in the run directory",
            "selector_redis": "production profile's bandit state fields ("
            + ", ".join(PRODUCTION_STATE_FIELDS)
            + ") on a private loopback redis-server (maxmemory 2560mb noeviction as manifests/base/redis.yaml; "
            + (
                "appendonly yes, appendfsync always"
                if args.redis_aof
                else "no persistence: --save '' --appendonly no"
            )
            + "; no ACL user/password, no TLS)",
            "selector_redis_per_request": "as selector_redis with bandit.refresh_ms=0 (no counts snapshot: "
            f"a Redis read per selection, in a worker thread, as before) under prefix {PER_REQUEST_PREFIX}",
        },
        "load_generator": "separate process per slice: uvloop, raw HTTP/1.1 over one socket per connection, "
        "one request in flight per connection; on the same machine as the servers",
        "world": "small world (48 products x 5 creatives, 4 segments), RM-like priors",
        "results": results,
        "vs_noop": ratios,
        # each selector against the no-op that does its non-selector parts (the ceiling of its design)
        "vs_ceiling": {
            "selector_sqlite_vs_noop_thread_hop": results["selector_sqlite"]["requests_per_s"]
            / results["noop_thread_hop"]["requests_per_s"],
            "selector_redis_vs_noop_redis_read": redis["requests_per_s"]
            / results["noop_redis_read"]["requests_per_s"],
            "selector_redis_per_request_vs_noop_redis_read": results["selector_redis_per_request"][
                "requests_per_s"
            ]
            / results["noop_redis_read"]["requests_per_s"],
            "selector_redis_vs_selector_redis_per_request": redis["requests_per_s"]
            / results["selector_redis_per_request"]["requests_per_s"],
        },
        **extra,
        "goals": {
            "target": "selector_redis",
            "throughput_ratio_min": GOAL_RATIO,
            "p99_ms_max": GOAL_P99_MS,
            "throughput_ratio_met": ratios["selector_redis"]["throughput"] >= GOAL_RATIO,
            "p99_met": redis["p99_ms"] <= GOAL_P99_MS,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="measured requests per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2000, help="requests per target before measuring")
    parser.add_argument("--rounds", type=int, default=6, help="alternate the targets this many times")
    parser.add_argument(
        "--feedback-share", type=float, default=0.1, help="share of requests that are feedback"
    )
    parser.add_argument(
        "--redis-aof", action="store_true", help="Redis with production's appendonly yes + appendfsync always"
    )
    parser.add_argument(
        "--quick", action="store_true", help="6,000 requests per target, 4 rounds, 1,000 warmup"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "selector_throughput.json"
    )
    parser.add_argument("--serve-noop", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--noop", nargs=2, default=("noop", ""), help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        run_load(*(int(x) for x in args.load))
        return
    if args.serve_noop is not None:
        serve_noop(args.serve_noop, *args.noop)
        return
    if args.quick:
        args.requests, args.rounds, args.warmup = 6000, 4, 1000
    sys.path.insert(0, str(ROOT / "src"))
    loads = {"start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="caig-bench-") as tmp:
        run = Path(tmp)
        creatives = prepare_run(run)
        measured = request_mix(creatives, args.requests, args.feedback_share, 0, "ev")
        warm = request_mix(creatives, args.warmup, args.feedback_share, 1, "warm")
        redis_proc, redis_port = start_redis(run, args.redis_aof)
        try:
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
            in_process = in_process_costs(
                run, request_mix(creatives, 5000, args.feedback_share, 2, "inproc"), redis_url
            )
            servers, procs = start_servers(run, redis_url, redis_proc.pid)
            try:
                loads["before_measuring"] = os.getloadavg()
                results, orders = measure_interleaved(
                    servers, request_lines(measured), request_lines(warm), args.connections, args.rounds
                )
                loads["end"] = os.getloadavg()
            finally:
                for proc in procs:
                    stop(proc)
            sent = sum("feedback" in r for r in measured + warm)
            counts = count_check(run, redis_port, redis_prefix(), sent)
        finally:
            stop(redis_proc)
    for name, res in results.items():
        print(name, {k: v for k, v in res.items() if not k.endswith("by_round")}, flush=True)
    extra = {"load_average": loads, "in_process": in_process, "count_check": counts}
    out = report(args, results, orders, extra)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    summary = {k: out[k] for k in ("load_average", "count_check", "goals")}
    summary["vs_noop"] = {n: r["throughput"] for n, r in out["vs_noop"].items()}
    summary["in_process"] = {
        n: {
            k: round(v, 2)
            for k, v in r.items()
            if k.startswith(("propensity_cpu", "select_cpu", "select_p50"))
        }
        for n, r in in_process.items()
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

"""Selector throughput: requests/s and p50/p99 latency at 16 concurrent connections, on loopback.

Starts, through the same wrapper (``caig.serving.server.serve``: one worker, the same uvicorn and kserve
settings, per-request logging off), three servers: (1) a no-op KServe model (answers a fixed prediction: the
ceiling of any model on this server), (2) ``caig serve selector`` on a small world with RM-like priors
(SQLite state), and (3) the same selector with the propensity cache off (a Monte Carlo propensity estimate
on every request). Each is driven by the same load generator, a separate lean process (uvloop, raw
HTTP/1.1 keep-alive over a socket per connection, one request in flight per connection), over slices of
the same requests, the targets alternated round by round (order reversed every other round) so that other
load on a shared machine hits each alike. Records the load average, each server's and the load generator's
CPU time per request (/proc), the CPU time other processes took while each target ran, and one in-process
``select`` call's cost. Writes benchmarks/results/selector_throughput.json.

    .venv/bin/python benchmarks/selector_throughput.py            # 20,000 requests per target, 6 rounds
    .venv/bin/python benchmarks/selector_throughput.py --quick    # 6,000 per target, 4 rounds (~1 min)
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


# ---- the no-op server (a subprocess of this script) ----------------------------------------------------


def serve_noop(port: int) -> None:
    """A KServe model that does nothing, served exactly as ``caig serve selector`` serves its models."""
    from caig.serving.kserve_compat import import_kserve
    from caig.serving.server import serve

    kserve = import_kserve()

    class Noop(kserve.Model):
        def load(self) -> bool:
            self.ready = True
            return True

        def predict(self, payload, headers=None):
            return {"predictions": [{"creative_id": "C000000", "propensity": 1.0, "policy": "noop"}]}

    model = Noop("noop")
    model.load()
    serve([model], host="127.0.0.1", port=port)


# ---- the load generator (a subprocess of this script; imports nothing heavy) ---------------------------


class KeepAliveClient(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection sending its requests in turn, each once the last answer is complete.

    Parses only what it needs (status line, Content-Length) straight from the socket's bytes: the client's
    own CPU time is taken from the same cores as the server's.
    """

    def __init__(self, requests: list[bytes], latencies: list[float], done: asyncio.Future):
        self.requests = requests
        self.latencies = latencies
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
        self.latencies.append(time.perf_counter() - self.sent_at)
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


async def _drive(port: int, path: str, bodies: list[bytes], connections: int, server_pid: int) -> dict:
    loop = asyncio.get_running_loop()
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    requests = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    latencies: list[float] = []
    clients = []
    for i in range(connections):
        done = loop.create_future()
        _, client = await loop.create_connection(
            lambda r=requests[i::connections], d=done: KeepAliveClient(r, latencies, d), "127.0.0.1", port
        )
        clients.append(client)
    server, busy, cpu = cpu_seconds(server_pid), machine_busy_seconds(), time.process_time()
    start = time.perf_counter()
    for client in clients:
        client.send_next()
    await asyncio.gather(*(c.done for c in clients))
    seconds = time.perf_counter() - start
    cpu, server = time.process_time() - cpu, cpu_seconds(server_pid) - server
    busy = machine_busy_seconds() - busy
    for client in clients:
        client.transport.close()
    return {
        "seconds": seconds,
        "server_cpu_s": server,
        "client_cpu_s": cpu,
        # what the rest of the machine used meanwhile (approximate: /proc/stat counts 10 ms ticks)
        "other_cpu_s": max(0.0, busy - server - cpu),
        "errors": sum(c.errors for c in clients),
        "latencies_ms": [1000 * x for x in latencies],
    }


def run_load(port: int, path: str, connections: int, server_pid: int) -> None:
    """Load generator mode: request bodies one per stdin line; one JSON result on stdout."""
    bodies = sys.stdin.buffer.read().splitlines()
    drive = _drive(port, path, bodies, connections, server_pid)
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(drive)
    else:
        result = uvloop.run(drive)
    json.dump(result, sys.stdout)


def load(port: int, path: str, bodies: list[bytes], connections: int, server_pid: int) -> dict:
    """Run the load generator in its own process (a clean, small interpreter) over ``bodies``."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--load", str(port), path, str(connections)]
    done = subprocess.run([*cmd, str(server_pid)], input=b"\n".join(bodies), capture_output=True, check=False)
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
    seconds = sum(run["seconds"] for run in runs)
    return {
        "requests": len(lat),
        "errors": sum(run["errors"] for run in runs),
        "seconds": seconds,
        "requests_per_s": len(lat) / seconds,
        "p50_ms": float(np.percentile(lat, 50)),
        "p90_ms": float(np.percentile(lat, 90)),
        "p99_ms": float(np.percentile(lat, 99)),
        "p999_ms": float(np.percentile(lat, 99.9)),
        "mean_ms": float(lat.mean()),
        "requests_per_s_by_round": [len(run["latencies_ms"]) / run["seconds"] for run in runs],
        "p99_ms_by_round": [float(np.percentile(run["latencies_ms"], 99)) for run in runs],
        "server_cpu_ms_per_request": 1000 * sum(run["server_cpu_s"] for run in runs) / len(lat),
        "client_cpu_ms_per_request": 1000 * sum(run["client_cpu_s"] for run in runs) / len(lat),
        "other_processes_cpu_cores": sum(run["other_cpu_s"] for run in runs) / seconds,
    }


def measure_interleaved(
    servers: dict[str, tuple[int, str, int]], bodies: list[bytes], connections: int, warmup: int, rounds: int
) -> tuple[dict, list[list[str]]]:
    """Drive every server in turn, ``rounds`` times over slices of the requests, the order reversed every
    other round; per-target totals over all rounds, and the order of each round."""
    for port, model, pid in servers.values():
        load(port, f"/v1/models/{model}:predict", bodies[:warmup], connections, pid)
    parts: dict[str, list[dict]] = {name: [] for name in servers}
    orders = []
    for r in range(rounds):
        order = list(servers) if r % 2 == 0 else list(reversed(servers))
        orders.append(order)
        for name in order:
            port, model, pid = servers[name]
            parts[name].append(load(port, f"/v1/models/{model}:predict", bodies[r::rounds], connections, pid))
    return {name: summarise(runs) for name, runs in parts.items()}, orders


# ---- setup ---------------------------------------------------------------------------------------------


def prepare_run(directory: Path) -> list[str]:
    """A small world and RM-like priors in a run directory; returns the product ids."""
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
    return pd.read_parquet(directory / "world" / "catalog.parquet").product_id.tolist()


def in_process_select_us(run: Path, products: list[str], n: int = 5000) -> dict:
    """Median and p99 microseconds of one ``CreativeSelector.select`` call (SQLite state), no HTTP."""
    import numpy as np

    from caig.bandit.config import BanditConfig
    from caig.bandit.selector import build_selector

    rng = random.Random(1)
    selector = build_selector(BanditConfig(seed=0, sqlite_path=str(run / "inproc.sqlite")), run)
    times = []
    for _ in range(n):
        product, segment = rng.choice(products), rng.choice(SEGMENTS)
        start = time.perf_counter()
        selector.select(product, segment)
        times.append(time.perf_counter() - start)
    selector.close()
    us = np.array(times) * 1e6
    return {"calls": n, "p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99))}


def start_servers(run: Path) -> tuple[dict[str, tuple[int, str, int]], list[subprocess.Popen]]:
    caig = [sys.executable, "-m", "caig", "serve", "selector", "--run", str(run)]
    targets = {
        "noop": ([sys.executable, str(Path(__file__).resolve()), "--serve-noop"], "noop", []),
        "selector": (caig, "creative-selector", ["--set", "bandit.seed=0"]),
        "selector_no_propensity_cache": (
            caig,
            "creative-selector",
            ["--set", "bandit.seed=0", "--set", "bandit.propensity_cache=0"],
        ),
    }
    servers, procs = {}, []
    try:
        for name, (cmd, model, extra) in targets.items():
            port = free_port()
            full = [*cmd, str(port)] if name == "noop" else [*cmd, "--port", str(port), *extra]
            procs.append(start(full, model, port, run / f"{name}.log"))
            servers[name] = (port, model, procs[-1].pid)
    except BaseException:
        for proc in procs:
            stop(proc)
        raise
    return servers, procs


def report(args: argparse.Namespace, results: dict, orders: list, in_process: dict, loads: dict) -> dict:
    import numpy as np

    noop, selector = results["noop"], results["selector"]
    ratio = selector["requests_per_s"] / noop["requests_per_s"]
    paired = [
        s / n
        for s, n in zip(selector["requests_per_s_by_round"], noop["requests_per_s_by_round"], strict=True)
    ]
    record = provenance()
    return {
        **record,
        "benchmark": "selector_throughput",
        "machine": {**record["machine"], "python": platform.python_version()},
        "load_average": loads,
        "connections": args.connections,
        "requests_per_target": args.requests,
        "warmup_requests": args.warmup,
        "rounds": args.rounds,
        "round_orders": orders,
        "protocol": "KServe V1 over HTTP/1.1 keep-alive on 127.0.0.1",
        "servers": "caig.serving.server.serve for every target: 1 worker, uvloop, httptools, per-request "
        "logging off, gc.freeze after load",
        "load_generator": "separate process per slice: uvloop, raw HTTP/1.1 over one socket per connection, "
        "one request in flight per connection; on the same machine as the servers",
        "world": "small world (48 products x 5 creatives), RM-like priors, SQLite state, no feedback interleaved",
        "results": results,
        "in_process_select": in_process,
        "selector_vs_noop_throughput": ratio,
        "selector_vs_noop_cpu_bound_throughput": noop["server_cpu_ms_per_request"]
        / selector["server_cpu_ms_per_request"],
        "selector_vs_noop_throughput_by_round": paired,
        "selector_vs_noop_throughput_median_of_rounds": float(np.median(paired)),
        "selector_vs_noop_p99": selector["p99_ms"] / noop["p99_ms"],
        "goals": {
            "throughput_ratio_min": GOAL_RATIO,
            "p99_ms_max": GOAL_P99_MS,
            "throughput_ratio_met": ratio >= GOAL_RATIO,
            "p99_met": selector["p99_ms"] <= GOAL_P99_MS,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000, help="measured requests per target")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2000, help="requests per target before measuring")
    parser.add_argument("--rounds", type=int, default=6, help="alternate the targets this many times")
    parser.add_argument(
        "--quick", action="store_true", help="6,000 requests per target, 4 rounds, 1,000 warmup"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "selector_throughput.json"
    )
    parser.add_argument("--serve-noop", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--load", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load is not None:
        run_load(int(args.load[0]), args.load[1], int(args.load[2]), int(args.load[3]))
        return
    if args.serve_noop is not None:
        serve_noop(args.serve_noop)
        return
    if args.quick:
        args.requests, args.rounds, args.warmup = 6000, 4, 1000
    sys.path.insert(0, str(ROOT / "src"))
    loads = {"start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="caig-bench-") as tmp:
        run = Path(tmp)
        products = prepare_run(run)
        rng = random.Random(0)
        bodies = [
            json.dumps(
                {"instances": [{"product_id": rng.choice(products), "segment": rng.choice(SEGMENTS)}]}
            ).encode()
            for _ in range(args.requests)
        ]
        in_process = in_process_select_us(run, products)
        servers, procs = start_servers(run)
        try:
            loads["before_measuring"] = os.getloadavg()
            results, orders = measure_interleaved(servers, bodies, args.connections, args.warmup, args.rounds)
            loads["end"] = os.getloadavg()
        finally:
            for proc in procs:
                stop(proc)
    for name, res in results.items():
        print(name, {k: v for k, v in res.items() if not k.endswith("by_round")}, flush=True)
    out = report(args, results, orders, in_process, loads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("load_average", "selector_vs_noop_throughput", "goals")}, indent=2))


if __name__ == "__main__":
    main()

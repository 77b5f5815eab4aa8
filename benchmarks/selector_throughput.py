"""Selector throughput: requests/s and p50/p99 latency at 16 concurrent connections, on loopback.

Starts (1) a no-op KServe model (answers a fixed prediction), (2) `caig serve selector`
on a small world with RM-like priors (SQLite state), and (3) the same selector with the propensity cache
off (a Monte Carlo propensity estimate on every request), all through the same ModelServer wrapper
(caig.serving.server.serve), and drives each with the same keep-alive HTTP/1.1 load generator (asyncio
streams, 16 connections, a bounded number of V1 requests), alternating between the targets in rounds. Also records each server's CPU time per request (from /proc), which other load on a shared machine
disturbs far less than wall-clock throughput, and one in-process ``select`` call's cost. Writes
benchmarks/results/selector_throughput.json.

    .venv/bin/python benchmarks/selector_throughput.py [--requests 20000] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SMALL_WORLD = [
    "world.n_products=48",
    "world.n_creatives_per_product=5",
    "world.n_events=400000",
    "world.n_days=7",
    "world.image_size=64",
    "world.contact_sheet_products=4",
]


def serve_noop(port: int) -> None:
    """A KServe model that does nothing: the ceiling any model on this server can reach."""
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url_host: str, port: int, model: str, proc: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://{url_host}:{port}/v1/models/{model}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server not ready in 120 s")


async def _connection(
    port: int, bodies: list[bytes], path: str, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    for body in bodies:
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        start = time.perf_counter()
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - start)
        if not status_line.startswith(b"HTTP/1.1 200"):
            errors.append(int(status_line.split()[1]))
    writer.close()


async def _load(port: int, path: str, bodies: list[bytes], connections: int, keep: bool = False) -> dict:
    latencies: list[float] = []
    errors: list[int] = []
    chunks = [bodies[i::connections] for i in range(connections)]
    start = time.perf_counter()
    await asyncio.gather(*(_connection(port, c, path, latencies, errors) for c in chunks))
    wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000
    out = {
        "requests": len(bodies),
        "errors": len(errors),
        "seconds": wall,
        "requests_per_s": len(bodies) / wall,
    }
    if keep:
        out["latencies_ms"] = lat
    return out


def start(cmd: list[str], model: str, port: int, log: Path) -> subprocess.Popen:
    """Start one server subprocess and wait until its model is ready."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
    wait_ready("127.0.0.1", port, model, proc, log)
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), robust to other load on the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_interleaved(
    servers: dict[str, tuple[int, str, int]], bodies: list[bytes], connections: int, warmup: int, rounds: int
) -> dict:
    """Drive every server in turn, ``rounds`` times over slices of the requests, so that load from other
    processes on a shared machine hits every target alike; per-target totals over all rounds."""
    for port, model, _ in servers.values():
        asyncio.run(_load(port, f"/v1/models/{model}:predict", bodies[:warmup], connections))
    parts: dict[str, list[dict]] = {name: [] for name in servers}
    for r in range(rounds):
        for name, (port, model, pid) in servers.items():
            chunk = bodies[r::rounds]
            cpu = cpu_seconds(pid)
            part = asyncio.run(_load(port, f"/v1/models/{model}:predict", chunk, connections, keep=True))
            part["server_cpu_s"] = cpu_seconds(pid) - cpu
            parts[name].append(part)
    results = {}
    for name, runs in parts.items():
        lat = np.concatenate([run.pop("latencies_ms") for run in runs])
        seconds = sum(run["seconds"] for run in runs)
        results[name] = {
            "requests": len(lat),
            "errors": sum(run["errors"] for run in runs),
            "seconds": seconds,
            "requests_per_s": len(lat) / seconds,
            "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "mean_ms": float(lat.mean()),
            "requests_per_s_by_round": [run["requests_per_s"] for run in runs],
            "server_cpu_ms_per_request": 1000 * sum(run["server_cpu_s"] for run in runs) / len(lat),
        }
    return results


def prepare_run(directory: Path) -> list[str]:
    """A small world and RM-like priors in a run directory; returns the product ids."""
    import pandas as pd

    from caig.bandit.config import SimulateConfig
    from caig.bandit.simulate import empirical_priors, read_logged_events
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


def in_process_select_us(run: Path, products: list[str], segments: list[str], n: int = 5000) -> dict:
    """Median and p99 microseconds of one ``CreativeSelector.select`` call (SQLite state), no HTTP."""
    from caig.bandit.config import BanditConfig
    from caig.bandit.selector import build_selector

    rng = random.Random(1)
    selector = build_selector(BanditConfig(seed=0, sqlite_path=str(run / "inproc.sqlite")), run)
    times = []
    for _ in range(n):
        product, segment = rng.choice(products), rng.choice(segments)
        start = time.perf_counter()
        selector.select(product, segment)
        times.append(time.perf_counter() - start)
    selector.close()
    us = np.array(times) * 1e6
    return {"calls": n, "p50_us": float(np.percentile(us, 50)), "p99_us": float(np.percentile(us, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5, help="alternate the targets this many times")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "selector_throughput.json"
    )
    parser.add_argument("--serve-noop", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_noop is not None:
        serve_noop(args.serve_noop)
        return
    sys.path.insert(0, str(ROOT / "src"))
    segments = ["young", "family", "professional", "senior"]
    with tempfile.TemporaryDirectory(prefix="caig-bench-") as tmp:
        run = Path(tmp)
        products = prepare_run(run)
        rng = random.Random(0)
        bodies = [
            json.dumps(
                {"instances": [{"product_id": rng.choice(products), "segment": rng.choice(segments)}]}
            ).encode()
            for _ in range(args.requests)
        ]
        in_process = in_process_select_us(run, products, segments)
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
            results = measure_interleaved(servers, bodies, args.connections, args.warmup, args.rounds)
        finally:
            for proc in procs:
                stop(proc)
        for name, res in results.items():
            print(name, json.dumps(res), flush=True)
    ratio = results["selector"]["requests_per_s"] / results["noop"]["requests_per_s"]
    paired = [
        s / n
        for s, n in zip(
            results["selector"]["requests_per_s_by_round"],
            results["noop"]["requests_per_s_by_round"],
            strict=True,
        )
    ]
    report = {
        "benchmark": "selector_throughput",
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "connections": args.connections,
        "requests_per_target": args.requests,
        "warmup_requests": args.warmup,
        "rounds": args.rounds,
        "load_average_at_end": os.getloadavg(),
        "protocol": "KServe V1 over HTTP/1.1 keep-alive on 127.0.0.1; load generator in the same machine",
        "world": "small world (48 products x 5 creatives), RM-like priors, SQLite state, no feedback interleaved",
        "results": results,
        "in_process_select": in_process,
        "selector_vs_noop_throughput": ratio,
        "selector_vs_noop_cpu_bound_throughput": results["noop"]["server_cpu_ms_per_request"]
        / results["selector"]["server_cpu_ms_per_request"],
        "selector_vs_noop_throughput_by_round": paired,
        "selector_vs_noop_throughput_median_of_rounds": float(np.median(paired)),
        "goals": {
            "throughput_ratio_min": 0.85,
            "p99_ms_max": 10.0,
            "throughput_ratio_met": ratio >= 0.85,
            "p99_met": results["selector"]["p99_ms"] <= 10.0,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Faults injected into a running selector setup, and what callers saw: real processes on loopback.

Two `caig serve selector` replicas share one redis-server (production's layout); a client sends selections
with 10% feedback through phases: normal, Redis killed, Redis back, Redis paused (SIGSTOP), Redis resumed,
one replica killed (SIGKILL, the client fails over to the other). Afterwards every acknowledged feedback is
looked up in Redis's feedback log. Recorded: requests and answers by status per phase, the slowest answer,
seconds until the first 200 after each recovery, acknowledged feedback lost (must be 0) and events counted
twice (must be 0).

    .venv/bin/python benchmarks/serving_faults.py --out benchmarks/results/serving_faults.json
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import redis
from provenance import provenance

SELECT = "/v1/models/creative-selector:predict"
FEEDBACK = "/v1/models/creative-feedback:predict"
PREFIX = "caig.bench.faults."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int, directory: Path) -> subprocess.Popen:
    # persistence as manifests/base/redis.yaml runs it: an acknowledged write is on disk before the answer
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "yes",
                             "--appendfsync", "always", "--dir", str(directory)], stdout=subprocess.DEVNULL)  # fmt: skip
    for _ in range(100):
        try:
            redis.Redis(port=port).ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis-server did not start")


def start_selector(run: Path, redis_port: int, seed: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    sets = ["bandit.store=redis", f"bandit.redis_url=redis://127.0.0.1:{redis_port}/0",
            f"bandit.redis_prefix={PREFIX}", f"bandit.seed={seed}", "bandit.store_timeout_s=0.3"]  # fmt: skip
    cmd = [sys.executable, "-m", "caig", "serve", "selector", "--run", str(run), "--port", str(port)]
    proc = subprocess.Popen([*cmd, *[x for s in sets for x in ("--set", s)]], stdout=log.open("w"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/v2/models/creative-selector/ready", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"selector did not start: {log.read_text()[-2000:]}")


class Client:
    """Selections with 10% feedback; records every answer's status and latency per phase."""

    def __init__(self, urls: list[str], products: list[str]):
        self.urls, self.products = urls, products
        self.http = httpx.Client(timeout=5)
        self.rng = np.random.default_rng(0)
        self.phases: dict[str, collections.Counter] = {}
        self.slowest: dict[str, float] = {}
        self.acknowledged: set[str] = set()
        self.n = 0

    def run(self, phase: str, seconds: float, until_ok: bool = False) -> float | None:
        """Send for ``seconds`` (or, with ``until_ok``, until the first 200); return seconds to that 200."""
        counts = self.phases.setdefault(phase, collections.Counter())
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            status = self.one(phase, counts)
            if until_ok and status == 200:
                return round(time.monotonic() - started, 2)
        return None

    def one(self, phase: str, counts: collections.Counter) -> int:
        product = str(self.rng.choice(self.products))
        body = {"instances": [{"product_id": product, "segment": "young"}]}
        status, answer = self.post(SELECT, body, phase)
        counts[status] += 1
        if status == 200 and self.rng.random() < 0.1:
            self.n += 1
            event = {"event_id": f"bench-{self.n}", "product_id": product, "segment": "young",
                     "creative_id": answer["predictions"][0]["creative_id"], "clicked": bool(self.rng.random() < 0.05)}  # fmt: skip
            fb_status, fb = self.post(FEEDBACK, {"instances": [event]}, phase)
            counts[f"feedback {fb_status}"] += 1
            if fb_status == 200:
                self.acknowledged.add(event["event_id"])
        return status

    def post(self, path: str, body: dict, phase: str) -> tuple[int, dict]:
        for url in self.urls:  # the first replica, then the next: a load balancer's failover
            started = time.monotonic()
            try:
                answer = self.http.post(url + path, json=body)
            except httpx.TransportError:
                continue
            finally:
                self.slowest[phase] = max(self.slowest.get(phase, 0.0), time.monotonic() - started)
            return answer.status_code, (answer.json() if answer.status_code == 200 else {})
        return 0, {}  # no replica answered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--phase-seconds", type=float, default=5.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="caig-faults-"))
    run = work / "run"
    subprocess.run([sys.executable, "-m", "caig", "world", "build", "--profile", "local", "--set",
                    "world.n_products=48", "--set", "world.n_events=200000", "--set", "world.n_days=7", "--set",
                    "world.image_size=32", "--out", str(run / "world")], check=True, capture_output=True)  # fmt: skip
    products = [f"P{i:05d}" for i in range(48)]
    redis_port = free_port()
    redis_proc = start_redis(redis_port, work)
    replicas = [start_selector(run, redis_port, seed, work / f"selector-{seed}.log") for seed in (0, 1)]
    client = Client([url for _, url in replicas], products)
    phase = args.phase_seconds
    recovery = {}
    try:
        client.run("normal", phase)
        redis_proc.kill()
        redis_proc.wait()
        client.run("redis killed", phase)
        redis_proc = start_redis(redis_port, work)
        recovery["redis restarted"] = client.run("redis restarted", 30, until_ok=True)
        client.run("redis restarted", phase)
        redis_proc.send_signal(signal.SIGSTOP)
        client.run("redis paused", phase)
        redis_proc.send_signal(signal.SIGCONT)
        recovery["redis resumed"] = client.run("redis resumed", 30, until_ok=True)
        client.run("redis resumed", phase)
        replicas[0][0].kill()  # SIGKILL
        recovery["replica killed"] = client.run("replica killed", 30, until_ok=True)
        client.run("replica killed", phase)
        log = redis.Redis(port=redis_port, decode_responses=True).xrange(f"{PREFIX}log")
        logged = collections.Counter(fields["event_id"] for _, fields in log)
    finally:
        for proc, _ in replicas:
            proc.kill()
        redis_proc.kill()
    record = {
        **provenance(),
        "setup": "2 selector replicas (Redis store, store_timeout_s 0.3), one redis-server with AOF "
        "(appendfsync always, as manifests/base/redis.yaml), loopback",
        "answers_by_phase": {
            p: {str(k): v for k, v in sorted(c.items(), key=str)} for p, c in client.phases.items()
        },
        "requests_sent": sum(v for c in client.phases.values() for k, v in c.items() if isinstance(k, int)),
        "server_errors_5xx_other_than_503": sum(
            v
            for c in client.phases.values()
            for k, v in c.items()
            if isinstance(k, int) and k >= 500 and k != 503
        ),  # fmt: skip
        "slowest_answer_s": {p: round(s, 3) for p, s in client.slowest.items()},
        "seconds_to_recover": recovery,
        "feedback_acknowledged": len(client.acknowledged),
        "acknowledged_feedback_lost": len(client.acknowledged - set(logged)),
        "duplicates_counted_twice": sum(1 for n in logged.values() if n > 1),
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()

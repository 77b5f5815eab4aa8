"""A real ``caig serve selector`` process on 127.0.0.1 and a free port, on a run made from the small world."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from caig.bandit.arena import read_logged_events
from caig.bandit.config import SimulateConfig
from caig.bandit.simulate import empirical_priors

REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``caig serve selector`` subprocess; ``stop()`` sends SIGTERM like Kubernetes does."""

    def __init__(
        self,
        run_dir: Path,
        overrides: list[str],
        log_path: Path,
        command: str = "selector",
        model: str = "creative-selector",
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.model = model
        self.log_path = log_path
        cmd = [
            sys.executable,
            "-m",
            "caig",
            "serve",
            command,
            "--run",
            str(run_dir),
            "--port",
            str(self.port),
        ]
        for item in overrides:
            cmd += ["--set", item]
        self.log = open(log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env={**os.environ})
        self._wait_ready(log_path)

    def _wait_ready(self, log_path: Path) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/v2/models/{self.model}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready after 90 s:\n{log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(scope="session")
def serving_run(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A run directory: the small world and an RM-priors table (empirical-Bayes stand-in for the RM)."""
    run = tmp_path_factory.mktemp("serving-run")
    (run / "world").symlink_to(small_world_dir)
    (run / "features").mkdir()
    priors = empirical_priors(read_logged_events(small_world_dir), SimulateConfig(), np.random.default_rng(0))
    priors.to_parquet(run / "features" / "rm_priors.parquet")
    return run


@pytest.fixture
def start_server(serving_run: Path, tmp_path: Path) -> Callable[..., Server]:
    """Start servers on the serving run (each stopped at the end of the test)."""
    started: list[Server] = []

    def start(*overrides: str) -> Server:
        server = Server(serving_run, list(overrides), tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_server(serving_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """One long-lived SQLite-backed server for the request/response tests of the session."""
    state = tmp_path_factory.mktemp("state") / "state.sqlite"
    server = Server(
        serving_run,
        [f"bandit.sqlite_path={state}", "bandit.seed=0"],
        tmp_path_factory.mktemp("logs") / "server.log",
    )
    yield server
    server.stop()


@pytest.fixture
def redis_prefix() -> str:
    from caig.bandit.state import RedisStore

    prefix = f"caig:test:serving:{uuid.uuid4().hex[:12]}:"
    yield prefix
    RedisStore(REDIS_URL, prefix).clear()


@pytest.fixture(scope="session")
def model_run(tmp_path_factory: pytest.TempPathFactory, small_world_dir: Path) -> Path:
    """A run in the one run layout (``caig.runlayout``): world/, pm/model (tiny PM), rm/ (tiny RM).

    Both models are untrained (built from configs); serving only needs them to answer.
    """
    from caig.mllm.build import build_tiny, save_model
    from caig.mllm.config import MLLMConfig
    from caig.reward.config import RewardConfig
    from caig.reward.io import save_reward_model
    from caig.reward.model import build_reward_model

    run = tmp_path_factory.mktemp("model-run")
    (run / "world").symlink_to(small_world_dir)
    model, processor = build_tiny(MLLMConfig(), small_world_dir)
    save_model(model, processor, run / "pm" / "model")
    config = RewardConfig(image_side=32, eval_batch_size=8)
    save_reward_model(build_reward_model(model, processor, config), processor, config, run / "rm")
    return run


MODEL_SERVER_SETTINGS = ["serving.max_new_tokens=6", "serving.device=cpu", "render.image_size=64"]


@pytest.fixture(scope="session")
def model_servers(model_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Server]:
    """``caig serve pm``, ``rm`` and ``render`` on the model run, one process each, for the session."""
    logs = tmp_path_factory.mktemp("model-server-logs")
    servers: dict[str, Server] = {}
    try:
        for command in ("pm", "rm", "render"):
            servers[command] = Server(
                model_run, MODEL_SERVER_SETTINGS, logs / f"{command}.log", command, f"caig-{command}"
            )
        yield servers
    finally:
        for server in servers.values():
            server.stop()

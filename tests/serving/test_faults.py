"""A running selector under hostile input and a failing store: 4xx for what a caller sends, 503 while its own
Redis is down or hung, never a 5xx of ours, and back to 200 by itself. Real processes on loopback: the
selector and a redis-server each test starts on its own port."""

from __future__ import annotations

import concurrent.futures
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis
from tests.serving.conftest import Server, free_port

SELECT = "/v1/models/creative-selector:predict"
SELECT_V2 = "/v2/models/creative-selector/infer"
FEEDBACK = "/v1/models/creative-feedback:predict"
FEEDBACK_V2 = "/v2/models/creative-feedback/infer"
READY = "/v2/models/creative-selector/ready"
LIVE = "/v2/health/live"
ASK = {"instances": [{"product_id": "P00003", "segment": "young"}]}


def post_raw(server: Server, path: str, body: bytes | str, timeout: float = 10) -> httpx.Response:
    return httpx.post(
        server.url + path, content=body, headers={"content-type": "application/json"}, timeout=timeout
    )


def v2_feedback(clicked, event_id="ev-1") -> dict:
    def text(name, value):
        return {"name": name, "shape": [1], "datatype": "BYTES", "data": [value]}

    return {"inputs": [text("event_id", event_id), text("product_id", "P00003"), text("segment", "young"),
                       text("creative_id", "C000015"),
                       {"name": "clicked", "shape": [1], "datatype": "BOOL", "data": [clicked]}]}  # fmt: skip


@pytest.mark.parametrize(
    "path, body",
    [
        (SELECT, '{"instances": [{"product_id": NaN, "segment": "young"}]}'),
        (SELECT, '{"instances": [{"product_id": "P00003", "segment": Infinity}]}'),
        (SELECT_V2, '{"inputs": [{"name": "product_id", "shape": [1], "datatype": "FP64", "data": [NaN]}]}'),
        (
            SELECT_V2,
            '{"inputs": [{"name": "product_id", "shape": [1], "datatype": "BYTES", "data": ["\\ud800"]}]}',
        ),
        (SELECT, '{"instances": [{"product_id": "\\udfff", "segment": "young"}]}'),
        (SELECT, "{not json"),
        (FEEDBACK_V2, json.dumps(v2_feedback("yes"))),
        (FEEDBACK_V2, json.dumps(v2_feedback(2))),
        (FEEDBACK_V2, json.dumps(v2_feedback(-1))),
        (FEEDBACK_V2, json.dumps(v2_feedback(1.5))),
        (FEEDBACK, json.dumps({"instances": [{**v2_feedback(True)["inputs"][0], "event_id": " "}]})),
    ],
)
def test_bad_values_are_a_400_that_names_them(sqlite_server, path, body):
    answer = post_raw(sqlite_server, path, body)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()) == {"error"} and len(answer.text) < 1000


def test_feedback_clicked_and_ids_follow_one_rule(sqlite_server, serving_run):
    for clicked in ("yes", 2, -1, 1.5, "true"):
        event = {"event_id": "r1", "product_id": "P00003", "segment": "young", "creative_id": "C000015",
                 "clicked": clicked}  # fmt: skip
        answer = post_raw(sqlite_server, FEEDBACK, json.dumps({"instances": [event]}))
        assert answer.status_code == 400 and "clicked" in answer.json()["error"], (clicked, answer.text)
    blank = {
        "event_id": " ",
        "product_id": "P00003",
        "segment": "young",
        "creative_id": "C000015",
        "clicked": True,
    }
    answer = post_raw(sqlite_server, FEEDBACK, json.dumps({"instances": [blank]}))
    assert (
        answer.status_code == 400
        and "event_id" in answer.json()["error"]
        and "blank" in answer.json()["error"]
    )


def test_a_huge_value_is_cut_and_logged_in_one_line_without_a_traceback(sqlite_server):
    huge = "P" * 1_000_000
    answer = post_raw(
        sqlite_server, SELECT, json.dumps({"instances": [{"product_id": huge, "segment": "young"}]})
    )
    assert answer.status_code == 400 and len(answer.content) < 1000
    time.sleep(0.2)
    log = sqlite_server.log_path.read_text()
    assert "Traceback" not in log and max(len(line) for line in log.splitlines()) < 2000


def test_an_unknown_model_is_a_404_in_one_log_line(sqlite_server):
    answer = post_raw(sqlite_server, "/v1/models/no-such-model:predict", json.dumps(ASK))
    assert answer.status_code == 404 and "no-such-model" in answer.json()["error"]
    time.sleep(0.2)
    assert "Traceback" not in sqlite_server.log_path.read_text()


def test_the_model_repository_is_closed(sqlite_server):
    for path in ("/v2/repository/models/creative-selector/unload", "/v2/repository/models/creative-selector/load",
                 "/v2/repository/index"):  # fmt: skip
        assert httpx.post(sqlite_server.url + path, timeout=10).status_code == 403
    assert post_raw(sqlite_server, SELECT, json.dumps(ASK)).status_code == 200
    assert httpx.get(sqlite_server.url + READY, timeout=10).status_code == 200


def test_a_body_over_the_limit_is_refused_unread(start_server):
    server = start_server("serving.max_body_bytes=4096", "bandit.seed=0")
    big = json.dumps({"instances": [{"product_id": "P00003", "segment": "young"}] * 200})
    assert post_raw(server, SELECT, big).status_code == 413

    def chunks():  # no Content-Length: counted as it streams
        yield big[:3000].encode()
        yield big[3000:].encode()

    streamed = httpx.post(server.url + SELECT, content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert post_raw(server, SELECT, json.dumps(ASK)).status_code == 200


@pytest.fixture
def own_redis(tmp_path: Path):
    """A redis-server of this test's own on a free port (stopped, paused and restarted by the test)."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed; the fault tests need it (apt install redis-server)")
    port = free_port()

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    state = {"proc": start(), "port": port, "start": start}
    yield state
    state["proc"].kill()
    state["proc"].wait()


def wait_for(check, seconds: float) -> float:
    """Seconds until ``check()`` is true (fails past ``seconds``)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    pytest.fail(f"not within {seconds} s")


def status(server: Server, path: str = SELECT, timeout: float = 5, body: dict = ASK) -> int:
    """The status of one request (0: no answer within ``timeout``)."""
    try:
        return post_raw(server, path, json.dumps(body), timeout=timeout).status_code
    except httpx.TimeoutException:
        return 0


def feedback_status(server: Server, event_id: str, timeout: float = 5) -> int:
    """The status of one feedback report for ``ASK``'s product (0: no answer within ``timeout``)."""
    event = {**feedback_event(0, "C000015"), "event_id": event_id}
    return status(server, FEEDBACK, timeout, body={"instances": [event]})


def on_redis(port: int, prefix: str = "caig.test.faults.") -> tuple[str, ...]:
    """The --set overrides of a selector whose state is in the test's own redis-server."""
    return (
        "bandit.store=redis",
        f"bandit.redis_url=redis://127.0.0.1:{port}/0",
        f"bandit.redis_prefix={prefix}",
    )


def test_redis_down_is_a_503_with_retry_after_and_not_ready_then_recovers(start_server, own_redis):
    port = own_redis["port"]
    server = start_server(*on_redis(port), "bandit.seed=0")
    assert status(server) == 200 and httpx.get(server.url + READY).status_code == 200
    own_redis["proc"].kill()
    own_redis["proc"].wait()
    wait_for(lambda: status(server) == 503, 3)  # within about bandit.refresh_ms: the snapshot goes stale
    answer = post_raw(server, SELECT, json.dumps(ASK))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert str(port) not in answer.text and "127.0.0.1" not in answer.text
    assert httpx.get(server.url + READY, timeout=5).status_code == 503  # the readiness probe fails
    assert httpx.get(server.url + LIVE, timeout=5).status_code == 200  # liveness does not
    assert feedback_status(server, "while-down") == 503  # not lost: the caller is told to retry
    own_redis["proc"] = own_redis["start"]()
    wait_for(lambda: status(server) == 200, 10)
    wait_for(lambda: feedback_status(server, "after-restart") == 200, 10)
    wait_for(lambda: httpx.get(server.url + READY, timeout=5).status_code == 200, 10)
    log = server.log_path.read_text()
    assert "Traceback" not in log


def test_redis_hung_answers_503_in_bounded_time_and_liveness_holds(start_server, own_redis):
    port = own_redis["port"]
    server = start_server(*on_redis(port), "bandit.store_timeout_s=0.3", "bandit.seed=0")
    assert status(server) == 200
    own_redis["proc"].send_signal(signal.SIGSTOP)
    try:
        # feedback awaits Redis on the event loop: the hang ends in a 503 after the socket timeout and one
        # retry, and the loop answers liveness meanwhile
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            answer = pool.submit(feedback_status, server, "while-hung")
            time.sleep(0.1)
            assert httpx.get(server.url + LIVE, timeout=2).status_code == 200
            assert not answer.done()  # liveness answered while the feedback was still waiting on Redis
            assert answer.result() == 503 and time.monotonic() - started < 3
        # the snapshot goes stale after STALE_REFRESHES refreshes, then the socket timeout, one retry, no hang
        wait_for(lambda: status(server, timeout=5) == 503, 3)
        live = time.monotonic()
        assert httpx.get(server.url + LIVE, timeout=2).status_code == 200
        assert time.monotonic() - live < 1
    finally:
        own_redis["proc"].send_signal(signal.SIGCONT)
    wait_for(lambda: status(server) == 200, 10)


def test_v2_metadata_declares_the_inputs_and_outputs(sqlite_server):
    selector = httpx.get(sqlite_server.url + "/v2/models/creative-selector", timeout=10).json()
    assert [(t["name"], t["datatype"]) for t in selector["inputs"]] == [
        ("product_id", "BYTES"),
        ("segment", "BYTES"),
    ]
    assert [t["name"] for t in selector["outputs"]] == ["creative_id", "propensity", "policy"]
    feedback = httpx.get(sqlite_server.url + "/v2/models/creative-feedback", timeout=10).json()
    assert ("clicked", "BOOL") in [(t["name"], t["datatype"]) for t in feedback["inputs"]]
    assert [t["name"] for t in feedback["outputs"]] == ["status"]


def test_the_model_servers_close_their_repository_too(model_servers):
    for command, server in model_servers.items():
        path = f"/v2/repository/models/caig-{command}/unload"
        assert httpx.post(server.url + path, timeout=10).status_code == 403, command
        assert httpx.get(server.url + f"/v2/models/caig-{command}/ready", timeout=10).status_code == 200


def feedback_event(i: int, creative: str) -> dict:
    return {"event_id": f"dup-{i}", "product_id": "P00003", "segment": "young", "creative_id": creative,
            "clicked": i % 7 == 0}  # fmt: skip


def redis_impressions(port: int, prefix: str) -> int:
    client = redis.Redis(port=port, decode_responses=True)
    return sum(int(v) for k, v in client.hgetall(f"{prefix}counts:P00003:young").items() if k.endswith("|n"))


def two_replicas(start_server, port: int, prefix: str) -> tuple[list[Server], str]:
    """Two selectors on one Redis, and a creative they serve for ``ASK``'s product."""
    replicas = [start_server(*on_redis(port, prefix), f"bandit.seed={i}") for i in range(2)]
    creative = post_raw(replicas[0], SELECT, json.dumps(ASK)).json()["predictions"][0]["creative_id"]
    return replicas, creative


def test_two_replicas_on_one_redis_count_concurrent_duplicates_once(start_server, own_redis):
    import concurrent.futures

    port, prefix = own_redis["port"], "caig.test.faults."
    replicas, creative = two_replicas(start_server, port, prefix)
    sends = [(replicas[(i + k) % 2], feedback_event(i, creative)) for i in range(150) for k in range(2)]

    def send(job):
        server, event = job
        return post_raw(server, FEEDBACK, json.dumps({"instances": [event]})).json()["predictions"][0]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, sends))
    assert answers.count("recorded") == 150 and answers.count("duplicate") == 150
    assert redis_impressions(port, prefix) == 150  # every event counted once, none twice


def test_a_killed_replica_loses_no_acknowledged_feedback(start_server, own_redis):
    port, prefix = own_redis["port"], "caig.test.kill."
    (first, second), creative = two_replicas(start_server, port, prefix)
    acknowledged, retried = set(), 0
    for i in range(120):
        event = feedback_event(i, creative)
        if i == 60:
            first.proc.kill()  # SIGKILL mid-traffic, as the OOM killer does
        try:
            answer = post_raw(first, FEEDBACK, json.dumps({"instances": [event]}), timeout=2)
            assert answer.status_code == 200
        except httpx.TransportError:
            retried += 1  # the client retries elsewhere, as a load balancer would
            answer = post_raw(second, FEEDBACK, json.dumps({"instances": [event]}))
        acknowledged.add(event["event_id"])
    assert retried >= 59 and len(acknowledged) == 120
    assert redis_impressions(port, prefix) == 120  # nothing acknowledged was lost, nothing counted twice


def test_the_model_servers_declare_their_v2_inputs_and_outputs(model_servers):
    expected = {
        "pm": ("image", "descriptions"),
        "rm": ("images", "win_prob"),
        "render": ("description", "image"),
    }
    for command, (an_input, an_output) in expected.items():
        meta = httpx.get(model_servers[command].url + f"/v2/models/caig-{command}", timeout=10).json()
        assert an_input in [t["name"] for t in meta["inputs"]] and an_output in [
            t["name"] for t in meta["outputs"]
        ]

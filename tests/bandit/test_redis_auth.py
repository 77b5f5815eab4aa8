"""The selector's Redis connections log in: an ACL user and a password from the environment (a Secret), TLS
by a rediss:// URL, and Feast's connection string taking the same password by ``${NAME}``. The Redis they log
in to is the shipped manifest's own start script (default user off, the app user kept from admin commands),
run here on a real redis-server; misconfigurations fail at start, naming the field to fix."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import yaml
from tests.bandit.conftest import loopback_client as client
from tests.serving.conftest import free_port

from caig.bandit.config import BanditConfig
from caig.bandit.state import RedisStore
from caig.bandit.types import Feedback
from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.features.store import STORE_YAML, check_online_credentials, store_yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifests" / "base" / "redis.yaml"
SECRET_FILE = "/run/secrets/caig-redis/password"  # where the manifest mounts the Secret
ENV = "CAIG_TEST_REDIS_PASSWORD"
# The first patched release of each line for CVE-2025-49844 (Lua use-after-free, RCE); older lines have none.
PATCHED = {(7, 2): (7, 2, 11), (7, 4): (7, 4, 6), (8, 0): (8, 0, 4), (8, 2): (8, 2, 2)}


def redis_container() -> dict:
    for doc in yaml.safe_load_all(MANIFEST.read_text()):
        if doc["kind"] == "StatefulSet":
            return doc["spec"]["template"]["spec"]["containers"][0]
    raise AssertionError(f"no StatefulSet in {MANIFEST}")


def manifest_script(port: int, data_dir: Path, password_file: Path) -> str:
    """The container's start script with this test's port, data directory and Secret file."""
    script = redis_container()["args"][0]
    for old, new in ((SECRET_FILE, str(password_file)), ("port 6379", f"port {port}"), ("dir /data", f"dir {data_dir}")):  # fmt: skip
        assert old in script, old
        script = script.replace(old, new)
    return script


@pytest.fixture
def manifest_redis(spawn_redis, tmp_path, monkeypatch):
    """A redis-server started by the manifest's script, with a fresh password in its Secret file and in the
    clients' environment variable; yields its port and the password."""
    password = secrets.token_hex(16)
    secret = tmp_path / "password"
    secret.write_text(password)
    monkeypatch.setenv(ENV, password)
    port = free_port()
    app = client(port, username="caig", password=password)
    spawn_redis(["sh", "-c", manifest_script(port, tmp_path, secret)], app.ping)
    return port, password


def selector_config(url: str, **fields) -> BanditConfig:
    return BanditConfig(store="redis", redis_url=url, redis_prefix="caig:test:auth:", **fields)


def exercise(store: RedisStore) -> None:
    """Record (blocking, and awaited as the server does), dedupe, count and read the log: every command the
    selector sends, under its login."""
    event = Feedback("ev-1", "P1", "young", "C1", True, 0.5)
    assert store.record([event, event]) == [True, False]
    later = Feedback("ev-2", "P1", "young", "C1", False)
    assert asyncio.run(store.record_async([event, later])) == [False, True]
    assert store.counts("P1", "young") == {"C1": (2, 1)}
    assert store.feedback_log().event_id.tolist() == ["ev-1", "ev-2"]


def test_the_image_is_a_patched_release():
    image = redis_container()["image"]
    match = re.fullmatch(r"redis:(\d+)\.(\d+)\.(\d+)(-[a-z0-9.]+)?", image)
    assert match, f"{image}: pin an exact redis release tag"
    version = tuple(int(v) for v in match.groups()[:3])
    line = version[:2]
    assert line in PATCHED or line > max(PATCHED), f"{image}: a release line without the CVE-2025-49844 fix"
    assert version >= PATCHED.get(line, version), f"{image}: older than {PATCHED[line]}"


def test_the_manifest_redis_refuses_strangers_and_keeps_the_app_from_admin(manifest_redis):
    port, password = manifest_redis
    with pytest.raises(redis.AuthenticationError):
        client(port).ping()  # the default user is off: no anonymous access
    with pytest.raises(redis.AuthenticationError):
        client(port, password=password).ping()  # nor as the default user with the password
    app = client(port, username="caig", password=password)
    for admin in (["FLUSHALL"], ["CONFIG", "SET", "maxmemory", "0"], ["ACL", "LIST"], ["KEYS", "*"]):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*admin)


def test_the_selector_logs_in_with_the_password_from_its_environment(manifest_redis):
    port, _ = manifest_redis
    config = selector_config(f"redis://127.0.0.1:{port}/0", redis_username="caig", redis_password_env=ENV)
    store = RedisStore.from_config(config)
    try:
        exercise(store)
    finally:
        store.clear()
        store.close()
    with pytest.raises(redis.AuthenticationError):  # without it Redis refuses the selector at start
        RedisStore.from_config(selector_config(f"redis://127.0.0.1:{port}/0"))


def test_the_readiness_probe_passes_on_the_manifest_redis(manifest_redis, tmp_path):
    port, password = manifest_redis
    (tmp_path / "password").write_text(password)
    probe = redis_container()["readinessProbe"]["exec"]["command"]
    assert SECRET_FILE in probe[-1] and "redis-cli " in probe[-1]
    command = probe[-1].replace(SECRET_FILE, str(tmp_path / "password"))
    command = command.replace("redis-cli ", f"redis-cli -p {port} ")
    assert subprocess.run([*probe[:-1], command], timeout=10).returncode == 0
    (tmp_path / "password").write_text("wrong")
    assert subprocess.run([*probe[:-1], command], timeout=10).returncode != 0


@pytest.mark.parametrize("password", ["", "has,comma", "has space", "quote'd"])
def test_a_bad_secret_stops_the_manifest_redis_with_the_fix(tmp_path, password):
    secret = tmp_path / "password"
    secret.write_text(password)
    done = subprocess.run(
        ["sh", "-c", manifest_script(free_port(), tmp_path, secret)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert done.returncode == 1
    assert "caig-redis-auth" in done.stderr and "openssl rand -hex 32" in done.stderr


def test_feast_takes_the_password_from_the_environment_and_never_writes_it(manifest_redis, tmp_path):
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.repo_config import load_repo_config

    port, password = manifest_redis
    config = FeaturesConfig(
        online_store="redis",
        redis_connection_string=f"127.0.0.1:{port},db=1,username=caig,password=${{{ENV}}}",
    )
    check_online_credentials(config)
    (tmp_path / STORE_YAML).write_text(yaml.safe_dump(store_yaml(config), sort_keys=False))
    assert password not in (tmp_path / STORE_YAML).read_text()
    repo_config = load_repo_config(tmp_path, tmp_path / STORE_YAML)  # how Feast reads it: env expanded
    client = RedisOnlineStore()._get_client(repo_config.online_store)
    assert client.ping() is True


def test_a_missing_or_unusable_feast_password_names_the_field(monkeypatch):
    config = FeaturesConfig(online_store="redis", redis_connection_string=f"redis:6379,password=${{{ENV}}}")
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(
        UserError, match=rf"features.redis_connection_string names \${{{ENV}}}, which is not set"
    ):
        check_online_credentials(config)
    for value in ("a,b", "12345", "true", "two words"):
        monkeypatch.setenv(ENV, value)
        with pytest.raises(UserError, match="letters and digits"):
            check_online_credentials(config)
    monkeypatch.setenv(ENV, secrets.token_hex(16))
    check_online_credentials(config)


def test_a_missing_password_variable_names_the_field(monkeypatch):
    config = selector_config("redis://127.0.0.1:1/0", redis_password_env=ENV)
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(
        UserError, match=rf"bandit.redis_password_env: the environment variable {ENV} is not set"
    ):
        RedisStore.from_config(config)
    monkeypatch.setenv(ENV, "")
    with pytest.raises(UserError, match=f"{ENV} is empty"):
        RedisStore.from_config(config)
    monkeypatch.setenv(ENV, "x")
    with pytest.raises(UserError, match="keep credentials out of redis_url"):
        RedisStore.from_config(selector_config("redis://:pw@127.0.0.1:1/0", redis_password_env=ENV))


@pytest.mark.parametrize(
    "fields, named",
    [
        ({"dedupe_window_s": 0}, "dedupe_window_s"),
        ({"dedupe_window_s": -1.0}, "dedupe_window_s"),
        ({"dedupe_window_s": float("nan")}, "dedupe_window_s"),
        ({"dedupe_window_s": float("inf")}, "dedupe_window_s"),
        ({"feedback_log_maxlen": 0}, "feedback_log_maxlen"),
        ({"redis_password_env": "hunter2!"}, "NAME of an environment variable"),
        ({"redis_url": "http://redis:6379/0"}, "rediss://"),
    ],
)
def test_bad_redis_settings_are_refused_by_name(fields, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        BanditConfig(**fields)


def test_tls_by_a_rediss_url(spawn_redis, tmp_path, monkeypatch):
    ca, cert, key = tls_files(tmp_path)
    password = secrets.token_hex(16)
    monkeypatch.setenv(ENV, password)
    port = free_port()
    argv = ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
            "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
            "--requirepass", password, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)]  # fmt: skip
    spawn_redis(argv, client(port, ssl=True, ssl_ca_certs=str(ca), password=password).ping)
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    store = RedisStore.from_config(selector_config(url, redis_password_env=ENV))
    try:
        exercise(store)
    finally:
        store.clear()
        store.close()
    with pytest.raises(redis.ConnectionError):  # plain text to the TLS port gets nowhere
        RedisStore.from_config(selector_config(f"redis://127.0.0.1:{port}/0", redis_password_env=ENV))
    feast = FeaturesConfig(
        online_store="redis",
        redis_connection_string=f"127.0.0.1:{port},ssl=true,ssl_ca_certs={ca},password=${{{ENV}}}",
    )
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.repo_config import load_repo_config

    (tmp_path / STORE_YAML).write_text(yaml.safe_dump(store_yaml(feast), sort_keys=False))
    repo_config = load_repo_config(tmp_path, tmp_path / STORE_YAML)
    assert RedisOnlineStore()._get_client(repo_config.online_store).ping() is True
    assert os.environ[ENV] == password


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (EC P-256, valid a day): ca, cert, key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)

    def builder(subject: str, issuer: str, public_key) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    usage = dict.fromkeys(
        ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
         "encipher_only", "decipher_only"], False,
    )  # fmt: skip
    ca = (
        builder("caig test CA", "caig test CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        builder("127.0.0.1", "caig test CA", key.public_key())
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.crt", directory / "redis.crt", directory / "redis.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths

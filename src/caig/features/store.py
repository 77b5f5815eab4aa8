"""The Feast store of a run: generate ``feature_store.yaml`` per profile, apply the repo, open the store.

A store directory holds the generated ``feature_store.yaml``, the registry and the offline sources
(``data/``); the SQLite online store lives there too, while the production profile points at Redis. The
feature definitions stay in the declarative repo (``feature_repo/``) and are applied from there, exactly
what ``feast apply`` would do, so one repo serves every profile.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from caig.errors import UserError
from caig.features.config import FeaturesConfig
from caig.features.sources import prepare_sources, resolve

log = logging.getLogger("caig.features")

STORE_YAML = "feature_store.yaml"
_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def store_dir(config: FeaturesConfig, run_dir: Path) -> Path:
    """The store directory of a run (``features.store_dir``, relative to the run unless absolute)."""
    return resolve(run_dir, config.store_dir)


def repo_dir(config: FeaturesConfig) -> Path:
    """The declarative Feast repo: ``features.repo_path`` from the cwd, else from the source tree."""
    candidates = [Path(config.repo_path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(Path(__file__).resolve().parents[3] / config.repo_path)
    for candidate in candidates:
        if (candidate / ".feastignore").is_file() or any(candidate.glob("*.py")):
            return candidate
    raise UserError(
        f"Feast repo '{config.repo_path}' not found; set features.repo_path to the feature_repo/ folder"
    )


def store_yaml(config: FeaturesConfig) -> dict[str, Any]:
    """The ``feature_store.yaml`` of a profile: SQLite + files locally, Redis online in production."""
    if config.online_store == "redis":
        online: dict[str, Any] = {"type": "redis", "connection_string": config.redis_connection_string}
    else:
        online = {"type": "sqlite", "path": "data/online_store.db"}
    return {
        "project": config.project,
        "provider": "local",
        "registry": config.registry,
        "online_store": online,
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": 3,
    }


def apply(config: FeaturesConfig, run_dir: Path) -> dict[str, Any]:
    """Prepare the run's offline sources, write ``feature_store.yaml`` and apply the repo's definitions."""
    directory = store_dir(config, run_dir)
    counts = prepare_sources(config, run_dir, directory)
    (directory / STORE_YAML).write_text(yaml.safe_dump(store_yaml(config), sort_keys=False))
    store = open_store(config, directory)
    repo = load_definitions(repo_dir(config))
    from feast.repo_operations import apply_total_with_repo_instance

    with feast_output_to_log():
        apply_total_with_repo_instance(
            store, config.project, store.registry, repo, skip_source_validation=False
        )
    return {
        "store": str(directory),
        "online_store": config.online_store,
        "rows": counts,
        "feature_views": sorted(v.name for v in store.list_feature_views()),
        "feature_services": sorted(s.name for s in store.list_feature_services()),
    }


def check_online_credentials(config: FeaturesConfig) -> None:
    """Every environment variable ``features.redis_connection_string`` names is set, to a value Feast can pass.

    Feast expands ``$NAME`` / ``${NAME}`` in ``feature_store.yaml`` when it loads it, so the connection string
    names the Redis password (``...,username=caig,password=${CAIG_REDIS_PASSWORD}``, a Secret mounted as env)
    and neither the profile nor the written file holds it. Unset, the literal text would reach Redis as the
    password; a comma would split Feast's parameters and a JSON literal (``123``, ``true``) would be parsed.
    """
    if config.online_store != "redis":
        return
    for match in _ENV_REFERENCE.finditer(config.redis_connection_string):
        name = match.group(1) or match.group(2)
        value = os.environ.get(name)
        if not value:
            raise UserError(
                f"features.redis_connection_string names ${{{name}}}, which is "
                f"{'empty' if value == '' else 'not set'}; mount the Redis password Secret "
                f"(caig-redis-auth, key password) as the environment variable {name}"
            )
        if not _passes_feast_parser(value):
            raise UserError(
                f"features.redis_connection_string: the value of ${{{name}}} has a comma, a space or reads "
                "as JSON, which Feast's connection string cannot carry; use letters and digits "
                "(openssl rand -hex 32)"
            )


def _passes_feast_parser(value: str) -> bool:
    """Feast splits its connection string on ',' and JSON-decodes each value (so ``123`` is a number)."""
    if "," in value or any(c.isspace() for c in value):
        return False
    try:
        json.loads(value)
    except ValueError:
        return True
    return False


def open_store(config: FeaturesConfig, directory: Path) -> Any:
    """A ``feast.FeatureStore`` on ``directory``, checked to have been applied with this profile."""
    check_online_credentials(config)
    path = Path(directory) / STORE_YAML
    if not path.is_file():
        raise UserError(f"no Feast store at {directory}; run `caig features apply` first")
    if yaml.safe_load(path.read_text()) != store_yaml(config):
        raise UserError(
            f"{path} was written for another profile (project or online store differ); "
            "run `caig features apply` with this profile first"
        )
    from feast import FeatureStore

    return FeatureStore(repo_path=str(directory))


def load_definitions(repo: Path) -> Any:
    """Import the repo's definition files (honouring ``.feastignore``) and collect its Feast objects."""
    from feast import Entity, FeatureService, FeatureView
    from feast.data_source import DataSource
    from feast.feature_view import DUMMY_ENTITY
    from feast.repo_contents import RepoContents
    from feast.repo_operations import get_repo_files

    contents = RepoContents(
        projects=[],
        data_sources=[],
        entities=[],
        feature_views=[],
        feature_services=[],
        on_demand_feature_views=[],
        stream_feature_views=[],
        label_views=[],
        permissions=[],
    )
    kinds = [
        (DataSource, contents.data_sources),
        (Entity, contents.entities),
        (FeatureView, contents.feature_views),
        (FeatureService, contents.feature_services),
    ]
    files = get_repo_files(repo)
    if not files:
        raise UserError(f"Feast repo {repo} has no definition files")
    for file in files:
        module = _import_file(file)
        for obj in vars(module).values():
            for kind, found in kinds:
                if isinstance(obj, kind) and not any(obj is seen for seen in found):
                    found.append(obj)
    contents.entities.append(DUMMY_ENTITY)  # as `feast apply` does, for views without entities
    return contents


def _import_file(file: Path) -> Any:
    name = f"caig_feature_repo_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise UserError(f"cannot import Feast definitions from {file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def feast_output_to_log() -> Iterator[None]:
    """Send what Feast prints to stdout to stderr, so commands can keep stdout for JSON."""
    with contextlib.redirect_stdout(sys.stderr):
        yield

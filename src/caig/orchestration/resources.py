"""Sizes of pipeline steps: Kubernetes quantities and DuckDB sizes as numbers, and the checks between them.

Every step of a compiled pipeline gets CPU and memory requests and limits (``orchestration.cpu``,
``orchestration.step_resources``, ``orchestration.gpu``). A step whose own memory budget is set elsewhere in
the profile must fit its limit: ingest runs DuckDB with ``data.ingest.memory_limit``, and DuckDB plus Python
and Arrow above it must stay below the container's limit, or the kernel kills the step mid-ingest.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from caig.errors import UserError

# What KFP's PipelineTask.set_cpu_* / set_memory_* accept (the compiled YAML carries the same strings).
CPU_PATTERN = re.compile(r"([0-9]*[.])?[0-9]+m?")
MEMORY_PATTERN = re.compile(r"([0-9]+)(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?")
_MEMORY_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# DuckDB's memory_limit units: KB, MB, GB, TB are powers of 1000, KiB ... TiB powers of 1024.
_DUCKDB = re.compile(r"(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)")
_DUCKDB_UNITS = {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
_DUCKDB_UNITS |= {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
# Share of the container's memory limit DuckDB may take: the rest is Python, Arrow batches and DuckDB's
# allocations outside its buffer manager.
DUCKDB_SHARE = 0.8


def cpu_cores(text: str) -> float:
    """A CPU quantity (``"2"``, ``"0.5"``, ``"500m"``) in cores; ValueError naming the accepted forms."""
    if not CPU_PATTERN.fullmatch(text):
        raise ValueError(f"CPU quantity {text!r}: write cores ('2', '0.5') or millicores ('500m')")
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(text: str) -> int:
    """A memory quantity (``"8G"``, ``"512Mi"``) in bytes; ValueError naming the accepted forms."""
    match = MEMORY_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(
            f"memory quantity {text!r}: write an integer with an optional unit K, M, G, T or Ki, Mi, Gi, Ti "
            "(e.g. '8G', '512Mi')"
        )
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


def scaled_quantity(text: str, times: int) -> str:
    """A CPU or memory quantity ``times`` over, in its own unit (``"48G"`` x 4 -> ``"192G"``, ``"500m"`` x 2
    -> ``"1000m"``); ValueError for a quantity that is neither."""
    if CPU_PATTERN.fullmatch(text):
        cores = cpu_cores(text) * times
        return f"{round(cores * 1000)}m" if text.endswith("m") else f"{cores:g}"
    match = MEMORY_PATTERN.fullmatch(text)
    if not match:
        memory_bytes(text)  # raises the message naming the accepted forms
    return f"{int(match.group(1)) * times}{match.group(2) or ''}"


def duckdb_bytes(text: str) -> int:
    """DuckDB's ``memory_limit`` (``"8GB"``, ``"512MiB"``) in bytes."""
    match = _DUCKDB.fullmatch(text.strip())
    if not match:
        raise ValueError(f"DuckDB memory limit {text!r}: write e.g. '512MB' or '8GB'")
    return int(float(match.group(1)) * _DUCKDB_UNITS[match.group(2)])


def check_duckdb_fits(duckdb_limit: str, step: str, memory_limit: str) -> None:
    """A UserError when DuckDB's limit leaves less than (1 - DUCKDB_SHARE) of ``step``'s memory limit free."""
    needed = duckdb_bytes(duckdb_limit) / DUCKDB_SHARE
    if memory_bytes(memory_limit) < needed:
        raise UserError(
            f"data.ingest.memory_limit {duckdb_limit} does not fit the {step} step's memory limit "
            f"{memory_limit} (DuckDB may take at most {DUCKDB_SHARE:.0%} of it); raise "
            f"orchestration.step_resources.{step}.memory_limit to at least {int(needed / 10**9) + 1}G "
            "or lower data.ingest.memory_limit"
        )


def check_placement(profile: Any, steps: set[str]) -> None:
    """What the compiled pipelines must agree with (``steps``: every step name they hold): each
    ``orchestration.step_resources`` key names a step, ingest's DuckDB fits its step, and the Feast store
    lies on the volume the features step mounts."""
    config = profile.orchestration
    unknown = sorted(set(config.step_resources) - steps)
    if unknown:
        raise UserError(
            f"orchestration.step_resources.{unknown[0]}: no pipeline step has that name; "
            f"the steps are {', '.join(sorted(steps))}"
        )
    check_duckdb_fits(profile.data.ingest.memory_limit, "ingest", config.resources_for("ingest").memory_limit)
    store = PurePosixPath(profile.features.store_dir)
    if config.features_pvc and not store.is_relative_to(config.features_mount_path):
        raise UserError(
            f"features.store_dir {store} is not on the features volume {config.features_pvc} mounted at "
            f"{config.features_mount_path}: the feature server would never see what the features step "
            "writes; put store_dir below orchestration.features_mount_path"
        )

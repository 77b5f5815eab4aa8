"""Proof that a process never imported the simulator's oracle: each Python process started with ``audit_env``
writes, as it exits, whether ``caig.world.oracle`` (or the world loader that imports it) was loaded.

A ``sitecustomize`` module on ``PYTHONPATH`` registers the check in every process, child processes included
(the KFP local runner's steps), without touching the code under test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ORACLE_MODULES = ("caig.world.oracle", "caig.world.loaded")
SITECUSTOMIZE = """
import atexit, json, os, sys

def _report():
    loaded = [m for m in {modules!r} if m in sys.modules]
    path = os.path.join(os.environ["CAIG_ORACLE_AUDIT"], f"{{os.getpid()}}.json")
    with open(path, "w") as f:
        json.dump({{"argv": sys.argv, "oracle": loaded}}, f)

if os.environ.get("CAIG_ORACLE_AUDIT"):
    atexit.register(_report)
"""


def audit_env(root: Path) -> dict[str, str]:
    """The environment for audited processes; their reports land in ``root/reports``."""
    site, reports = root / "site", root / "reports"
    site.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(modules=ORACLE_MODULES))
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "CAIG_ORACLE_AUDIT": str(reports)}


def audit_reports(root: Path) -> list[dict]:
    """Every audited process's report: ``{"argv": [...], "oracle": [modules loaded]}``."""
    return [json.loads(p.read_text()) for p in sorted((root / "reports").glob("*.json"))]

"""The production path at CPU cost: ``make smoke-production`` (``caig smoke-production``).

What a team deploys, run whole on one machine: the ``caig-training``, ``caig-refresh`` and ``caig-generate``
pipelines through the
KFP local runner with the production profile (``configs/smoke-production.yaml`` extends it, changing model
sizes, run lengths and addresses only: the LLaVA-v1.6 architecture and processor, so every image costs the
production token count; SD1.5 + ControlNet inpainting at 512 px; LoRA r128, bf16, gradient checkpointing,
DeepSpeed ZeRO-2; Redis for the online features), on real-format data with no simulator behind it: a small
release in the official CAIG format is written, then turned into the run's data by ``caig data import``.

The release is made from a small simulated world's LOGGED counts, in child processes (``caig world build``,
``caig world export-release``), so that this process and the pipeline's steps never import the oracle; the
steps that only the simulator can do are skipped with their reason in the metrics.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from caig.errors import UserError
from caig.profile import load_profile

log = logging.getLogger("caig.smoke")

PROFILE = "smoke-production"
IMPORT_DATE = date(2026, 10, 7)  # the release's counts are booked on this day ...
AS_OF = "2026-10-08T00:00:00+00:00"  # ... and the run happens the next day (production's freshness check)
FIXTURE_WORLD = (  # the world the release is made from: 16 products, 512 px images as production's
    "world.n_products=16",
    "world.n_creatives_per_product=5",
    "world.n_events=200000",
    "world.n_days=7",
    "world.image_size=512",
    "world.contact_sheet_products=2",
)


def caig(*args: str) -> None:
    """Run a ``caig`` command in a child process; a failure raises with its last error lines."""
    done = subprocess.run([sys.executable, "-m", "caig", *args], capture_output=True, text=True)
    if done.returncode:
        raise UserError(f"caig {' '.join(args[:2])} failed: {done.stderr.strip()[-2000:]}")


def build_release(out: Path) -> Path:
    """A small release in the official CAIG format at ``out/release`` (from a simulated world's logs)."""
    caig("world", "build", "--profile", "local", *_sets(FIXTURE_WORLD), "--out", str(out / "world"))
    caig("world", "export-release", "--world", str(out / "world"), "--out", str(out / "release"))
    return out / "release"


def import_release(release: Path, out: Path) -> Path:
    """``caig data import`` of the release into the run's data directory ``out`` (no world.json)."""
    from caig.data.importers import ReleaseFiles, import_caig_release

    import_caig_release(
        ReleaseFiles.in_folder(release), out, load_profile(PROFILE).data.caig_import, IMPORT_DATE
    )
    return out


def run_production_smoke(out: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Build the release and the tiny SD pipeline, run caig-training, then caig-refresh and caig-generate with
    the models the training run trained (generate registers into the imported data, last); write
    ``out/metrics.json`` (every run's metrics and step timings)."""
    from caig.orchestration.source import run_local_pipeline
    from caig.render.diffusers_models import build_tiny

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = import_release(build_release(out / "fixture"), out / "data")
    sd = out / "models" / "sd-tiny"
    if not (sd / "model_index.json").is_file():
        build_tiny(sd)
    profile = load_profile(PROFILE, [f"render.base_model={sd.resolve()}", *overrides])
    arguments = {"data": str(data.resolve()), "as_of": AS_OF}
    training = run_local_pipeline(profile, out / "training", arguments=arguments)
    steps = json.loads((out / "training" / "steps.json").read_text())
    rm = steps["train-rm"]["rm"]
    models = {"pm": steps["pretrain-pm"]["pm"], "optimized": steps["optimize-pm"]["run"], "rm": rm}
    refresh = run_local_pipeline(
        profile, out / "refresh", name="caig-refresh", arguments={**arguments, "rm": rm}
    )
    generate = run_local_pipeline(
        profile, out / "generate", name="caig-generate", arguments={**arguments, **models}
    )
    runs = {"training": training, "refresh": refresh, "generate": generate}
    summary = {
        "profile": PROFILE,
        "data": str(data),
        **runs,
        "seconds": {run: json.loads((out / run / "timings.json").read_text()) for run in runs},
    }
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    log.info("production smoke run finished: %s", out / "metrics.json")
    return summary


def _sets(overrides: Sequence[str]) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]

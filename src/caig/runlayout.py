"""The one layout of a served run directory: written by the pipeline, read by every server.

::

    RUN/world/                  the world (world.json, catalog, creatives, images)
    RUN/features/               the feature store (rm_priors.parquet: the selector's priors)
    RUN/pm/model/               the pre-trained prompt model (config.json: a LLaVA-NeXT directory)
    RUN/rm/                     the reward model (rm.json and heads)
    RUN/pcpo/round-NN/adapter/  the PCPO rounds' LoRA adapters (optional; the last finished round is served)

Writers: ``caig run --local`` links these names to its steps' outputs (``pipelines/local.py``, through
``caig.orchestration.rundir.RunDir.link``); ``register`` publishes a trained run to the runs volume in the
same layout (``caig.orchestration.storage.publish_run``), which KServe mounts at ``/mnt/models``. Readers:
``caig serve`` (``caig.serving.locate``) and ``caig generate --adapter``. Anything else is refused in one
line naming this layout; an explicit ``--model`` (or ``serving.pm_model`` / ``rm_model``) overrides it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from caig.errors import UserError

WORLD = "world"
FEATURES = "features"
PM = "pm"
PM_MODEL = "pm/model"
RM = "rm"
PCPO = "pcpo"
NAMES = (WORLD, FEATURES, PM, RM, PCPO)  # the top-level entries of a run

LAYOUT = (
    "expected the run layout RUN/world/ (world.json), RUN/features/, RUN/pm/model/ (config.json), "
    "RUN/rm/ (rm.json), RUN/pcpo/round-NN/adapter/ (optional)"
)


def last_round_adapter(pcpo_dir: Path) -> Path | None:
    """The LoRA adapter of the last finished round (``round-NN/round.json``) of a PCPO or DPO output."""
    rounds = sorted(Path(pcpo_dir).glob("round-*/round.json"), key=lambda p: p.parent.name)
    if rounds and (rounds[-1].parent / "adapter" / "adapter_config.json").is_file():
        return rounds[-1].parent / "adapter"
    return None


def is_pcpo_output(path: Path) -> bool:
    """Whether ``path`` is a preference-optimization output whose ``pcpo.json`` says it ran PCPO (not DPO)."""
    record = Path(path) / "pcpo.json"
    return record.is_file() and json.loads(record.read_text()).get("method") == "pcpo"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory in the layout above; ``require_*`` refuse a run without the part."""

    root: Path

    @property
    def world(self) -> Path:
        return self.root / WORLD

    @property
    def features(self) -> Path:
        return self.root / FEATURES

    @property
    def pm_model(self) -> Path:
        return self.root / PM_MODEL

    @property
    def rm(self) -> Path:
        return self.root / RM

    @property
    def pcpo(self) -> Path:
        return self.root / PCPO

    def has_world(self) -> bool:
        return (self.world / "world.json").is_file()

    def adapter(self) -> Path | None:
        """The last finished PCPO round's adapter, or None when the run has none."""
        return last_round_adapter(self.pcpo)

    def require_pm(self) -> Path:
        return self._require(self.pm_model, "config.json", "prompt model")

    def require_rm(self) -> Path:
        return self._require(self.rm, "rm.json", "reward model")

    def _require(self, path: Path, marker: str, what: str) -> Path:
        if not (path / marker).is_file():
            raise UserError(
                f"--run {self.root}: no {what} found at {path}/{marker}; {LAYOUT} (or pass --model DIR)"
            )
        return path

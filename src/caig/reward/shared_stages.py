"""Stage results that the RMs of one ablation share: the perceived vision tower and the borrowed renders.

Table 1's rows 1-5 start from the same pre-trained model, so for one seed the perception stage (the vision
tower learning to name background words, ``reward.perception``) and the backgrounds painted for it and for the
teacher are the same in all five: only what reads the tower afterwards differs (head, template slots, point
loss). ``caig rm ablation`` trains them once per start model and seed and loads them for the other rows.
Each result lives in a folder named by a hash of everything that made it (start model, data, seed, settings),
so a change of any of them trains or paints afresh; a folder is complete once its ``summary.json`` /
``borrowed.parquet`` is written, so a run cut off half-way is redone, not read.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from safetensors.torch import load_file, save_file

log = logging.getLogger("caig.reward")
TOWER_FILE, SUMMARY_FILE, RENDERS_FILE = "perceived_tower.safetensors", "summary.json", "borrowed.parquet"


def shared_dir(root: str | Path, stage: str, **made_from: Any) -> Path:
    """``root/<stage>-<hash of made_from>``: the folder of one shared result (paths are resolved first)."""
    parts = {k: str(Path(v).resolve()) if isinstance(v, Path) else v for k, v in made_from.items()}
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(root) / f"{stage}-{digest}"


def _tower_modules(llava: Any) -> dict[str, Any]:
    return {"vision_tower": llava.model.vision_tower, "projector": llava.model.multi_modal_projector}


def save_perceived(llava: Any, summary: dict[str, Any], directory: Path) -> None:
    """Keep the perceived vision tower and projector (and the stage's summary) for the other rows."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = {
        f"{name}.{key}": value.detach().contiguous().cpu()
        for name, module in _tower_modules(llava).items()
        for key, value in module.state_dict().items()
    }
    save_file(weights, str(directory / TOWER_FILE))
    (directory / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))  # last: marks the folder complete


def load_perceived(llava: Any, directory: Path) -> dict[str, Any] | None:
    """Load a perceived tower into ``llava`` and return its stage summary (``reused_from`` added), or None
    when ``directory`` holds no complete result."""
    if not (directory / SUMMARY_FILE).is_file():
        return None
    weights = load_file(str(directory / TOWER_FILE))
    for name, module in _tower_modules(llava).items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    log.info("RM stage perception: reused from %s (trained there in %.0f s)", directory, summary["seconds"])
    return {**summary, "reused_from": str(directory)}


def load_renders(directory: Path) -> pd.DataFrame | None:
    """Borrowed creatives painted into ``directory`` earlier (``save_renders``), or None."""
    path = directory / RENDERS_FILE
    return pd.read_parquet(path) if path.is_file() else None


def save_renders(borrowed: pd.DataFrame, directory: Path) -> pd.DataFrame:
    """Record the borrowed creatives painted into ``directory`` (their images are there already)."""
    borrowed.to_parquet(directory / RENDERS_FILE)
    return borrowed

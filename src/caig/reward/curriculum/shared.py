"""Stage results that the RMs of one ablation share: the perceived vision tower and the borrowed renders.

Table 1's rows 1-5 start from the same pre-trained model, so for one seed the perception stage (the vision
tower learning to name background words, ``curriculum.perception``) is the same in all five: only what reads the
tower afterwards differs (head, template slots, point loss). The borrowed backgrounds (other products'
descriptions painted around each product, for perception and the teacher) depend on the data, their count and
the seed only, so every row of a seed, row 0 too, reads the same ones. ``caig rm ablation`` trains and paints
them once and loads them for the other rows.

Each result lives in a folder named by a hash of what made it: the start model's and the data's files (names,
sizes, modification times), the seed, the settings and the training device; so a rebuilt model or world, or
other settings, train or paint afresh. A result is made in a private folder and moved into place when complete,
so RMs trained side by side never read half of one, and a run cut off half-way leaves nothing that is read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from safetensors.torch import load_file, save_file

log = logging.getLogger("caig.reward")
TOWER_FILE, SUMMARY_FILE, RENDERS_FILE = "perceived_tower.safetensors", "summary.json", "borrowed.parquet"


def fingerprint(path: str | Path) -> list[tuple[str, int, int]]:
    """What identifies a file's or a folder's content cheaply: its files' names, sizes and modification times
    (the top level of a folder: a saved model's weights and configs)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]


def data_fingerprint(data_dir: str | Path) -> list[tuple[str, int, int]]:
    """The fingerprint of a data folder's catalogue and creatives (what the renders and perception read)."""
    return [
        f for name in ("catalog.parquet", "creatives.parquet") for f in fingerprint(Path(data_dir) / name)
    ]


def shared_dir(root: str | Path, stage: str, **made_from: Any) -> Path:
    """``root/<stage>-<hash of made_from>``: the folder of one shared result."""
    digest = hashlib.sha256(json.dumps(made_from, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return Path(root) / f"{stage}-{digest}"


def _private(directory: Path) -> Path:
    """A fresh private folder beside ``directory`` where its result is made before it is moved into place."""
    private = directory.with_name(f"{directory.name}.making-{os.getpid()}")
    shutil.rmtree(private, ignore_errors=True)
    private.mkdir(parents=True)
    return private


def _move_into_place(private: Path, directory: Path) -> None:
    """Move a complete result into place; if another process put one there first, keep that one."""
    try:
        os.replace(private, directory)
    except OSError:  # the folder exists and is not empty: an RM beside this one finished first
        shutil.rmtree(private, ignore_errors=True)


def _tower_modules(llava: Any) -> dict[str, Any]:
    return {"vision_tower": llava.model.vision_tower, "projector": llava.model.multi_modal_projector}


def save_perceived(llava: Any, summary: dict[str, Any], directory: Path) -> None:
    """Keep the perceived vision tower and projector (and the stage's summary) for the other rows."""
    private = _private(directory)
    weights = {
        f"{name}.{key}": value.detach().contiguous().cpu()
        for name, module in _tower_modules(llava).items()
        for key, value in module.state_dict().items()
    }
    save_file(weights, str(private / TOWER_FILE))
    (private / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    _move_into_place(private, directory)


def load_perceived(llava: Any, directory: Path) -> dict[str, Any] | None:
    """Load a perceived tower into ``llava`` and return its stage summary, or None when ``directory`` holds
    none. ``seconds`` is the load's; ``trained_seconds`` the training's, ``reused_from`` the folder."""
    if not (directory / SUMMARY_FILE).is_file():
        return None
    started = time.perf_counter()
    weights = load_file(str(directory / TOWER_FILE))
    for name, module in _tower_modules(llava).items():
        prefix = f"{name}."
        module.load_state_dict({k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)})
    summary = json.loads((directory / SUMMARY_FILE).read_text())
    log.info("RM stage perception: reused from %s (trained there in %.0f s)", directory, summary["seconds"])
    return {
        **summary,
        "seconds": round(time.perf_counter() - started, 1),
        "trained_seconds": summary["seconds"],
        "reused_from": str(directory),
    }


def cached_renders(
    shared: str | Path | None,
    out: Path,
    data_dir: str | Path,
    per_product: int,
    seed: int,
    render: Callable[[Path], pd.DataFrame],
) -> pd.DataFrame:
    """Borrowed creatives painted by ``render(folder)`` (absolute ``image_path``): into ``out`` without
    ``shared`` (or with none to paint); with it, read from ``shared/borrowed-<hash>``, painted there first
    when no RM has yet."""
    if shared is None or per_product == 0:
        return render(out)
    directory = shared_dir(
        shared, "borrowed", data=data_fingerprint(data_dir), per_product=per_product, seed=seed
    )
    if not (directory / RENDERS_FILE).is_file():
        private = _private(directory)
        borrowed = render(private)
        names = [Path(p).name for p in borrowed["image_path"]]  # relative: the folder moves into place
        borrowed.assign(image_path=names).to_parquet(private / RENDERS_FILE)
        _move_into_place(private, directory)
    borrowed = pd.read_parquet(directory / RENDERS_FILE)
    return borrowed.assign(image_path=[str(directory.resolve() / n) for n in borrowed["image_path"]])

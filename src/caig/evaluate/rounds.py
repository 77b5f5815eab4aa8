"""The held-out descriptions and preference pairs a `caig pcpo` run wrote, round by round."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from caig.errors import UserError


def load_rounds(run_dir: Path) -> list[pd.DataFrame]:
    """Held-out descriptions of round 0, 1, ... of one run (contiguous rounds only)."""
    frames = _round_frames(run_dir, "heldout.parquet", first=0)
    if not frames:
        raise UserError(f"{run_dir} holds no round-00/heldout.parquet; pass a `caig pcpo --out` directory")
    return frames


def load_round_pairs(run_dir: Path) -> list[pd.DataFrame]:
    """The preference pairs of rounds 1, 2, ... (``round-NN/pairs.parquet``), as far as they are contiguous."""
    return _round_frames(run_dir, "pairs.parquet", first=1)


def _round_frames(run_dir: Path, name: str, first: int) -> list[pd.DataFrame]:
    frames, r = [], first
    while (run_dir / f"round-{r:02d}" / name).is_file():
        frames.append(pd.read_parquet(run_dir / f"round-{r:02d}" / name))
        r += 1
    return frames

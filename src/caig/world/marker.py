"""Whether a data directory is a simulated world: only then does an oracle (true CTR, match judge) exist.

Stages that can report oracle figures ask this first and import the oracle only for a simulated world, so
that a run on imported real logs never loads it.
"""

from __future__ import annotations

from pathlib import Path

WORLD_FILE = "world.json"  # written by `caig world build`; holds the seed the oracle is re-drawn from


def is_simulated(directory: str | Path) -> bool:
    """True for a directory `caig world build` wrote (its ``world.json``), False for imported data."""
    return (Path(directory) / WORLD_FILE).is_file()

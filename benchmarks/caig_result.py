"""Run one ``caig`` command and keep result files it wrote, each JSON with how it was made.

Some results in ``benchmarks/results/`` are the CLI's own outputs (``caig bandit simulate``'s ``simulate.json``
and ``regret.png``, ``caig rm calibrate-priors``'s ``prior_calibration.json``). This runs ``python -m caig
ARGS`` and copies each ``--keep NAME=DEST`` (NAME relative to the command's ``--out`` directory) to DEST; a
JSON object gets, in front of its own keys, this command line, the commit and the machine
(``provenance.provenance``) and the seed of every ``--world`` it read.

    python benchmarks/caig_result.py --keep simulate.json=benchmarks/results/bandit_simulate_small_world.json \\
        --keep regret.png=benchmarks/results/bandit_simulate_small_world.png \\
        -- bandit simulate --world runs/bench/world-small --out runs/bench/simulate-small
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from provenance import provenance


def option_values(argv: list[str], name: str) -> list[str]:
    """Every value of ``name`` in ``argv``, written ``name VALUE`` or ``name=VALUE``."""
    values = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == name]
    return values + [a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")]


def keep_argument(text: str) -> tuple[str, Path]:
    name, sep, dest = text.partition("=")
    if not sep or not name or not dest:
        raise argparse.ArgumentTypeError(
            f"--keep {text!r}: write NAME=DEST (NAME inside the command's --out)"
        )
    return name, Path(dest)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--keep", type=keep_argument, action="append", required=True, help="NAME=DEST (repeatable)"
    )
    parser.add_argument("caig_args", nargs=argparse.REMAINDER, help="-- then the caig command's arguments")
    args = parser.parse_args()
    argv = args.caig_args[1:] if args.caig_args[:1] == ["--"] else args.caig_args
    outs = option_values(argv, "--out")
    if len(outs) != 1:
        parser.error("the caig command must name one --out directory (where its result files are)")
    subprocess.run([sys.executable, "-m", "caig", *argv], check=True)
    worlds = {}
    for world in map(Path, option_values(argv, "--world")):
        if (world / "world.json").is_file():
            worlds[world.name] = json.loads((world / "world.json").read_text())["seed"]
    for name, dest in args.keep:
        source = Path(outs[0]) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.suffix == ".json" and isinstance(data := json.loads(source.read_text()), dict):
            dest.write_text(json.dumps({**provenance(), "world_seeds": worlds, **data}, indent=2) + "\n")
        else:
            shutil.copyfile(source, dest)
        print(f"kept {source} as {dest}")


if __name__ == "__main__":
    main()

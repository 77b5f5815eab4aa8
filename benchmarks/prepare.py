"""Prepare the worlds, models and reward models the benchmarks start from (benchmarks/results/INDEX.md).

    python benchmarks/prepare.py TARGET [TARGET ...] [--root runs/bench] [--dry-run]
    python benchmarks/prepare.py --list

Each target is made once under ``--root`` (default ``runs/bench``, ignored by git), after the targets it
needs; a rerun skips every target whose last output is already there, so an interrupted preparation goes on
where it stopped (a half-made target is made again). ``--dry-run`` prints what would run. Worlds, models and
the demo go through the ``caig`` CLI (``python -m caig``, local profile); the two RMs are trained with the
library exactly as ``benchmarks/rm_skill.py`` trains them; the word readers are ``rm_perception_bound.py
--keep`` runs. What each target is, as the README describes it:

- worlds: ``w0`` / ``w1`` world seed 0 / 1 of the local profile (300 products, 3M events; w1 gives the 260
  test pairs), ``w10`` the bigger training log (seed 10, 1,500 products, 30M events), ``w1big`` the held-out
  world at that size (2,667 test pairs), ``w1k`` the PCPO evaluation world (seed 1, 1,000 products, 1M events),
  ``world-small`` the tests' small world (48 products x 5 creatives, 400k events);
- models: ``base`` the untrained tiny model (``caig mllm build --preset tiny`` on w0), ``pm0`` / ``pm10`` the
  PM pre-trained on world seed 0 / 10 (``caig mllm tasks`` + ``caig pretrain``), and pre-trained variants of
  pm0: ``pm0-64px``, ``pm0-128px-p32``, ``pm0-128px-p16`` (image size and patch size of the tiny tower) and
  ``pm0-l4`` (language model of 4 layers, MLP 512);
- RMs: ``rm-curriculum`` the curriculum RM of PCPO and the selector's priors (side warm-up, description
  teacher with 8 borrowed backgrounds, logged pairs; from ``base``, world seed 10, training seed 0) and
  ``rm-borrowed40`` row 5 of Table 1 with 40 borrowed backgrounds (from ``pm0``, training seed 0; its RM is
  ``rm-borrowed40/seed0``, where ``rm_skill.py --rescore`` finds it);
- ``priors``: the curriculum RM's priors on world seed 1, at the default temperature and strength and
  calibrated on world seed 0's logs by both objectives (``caig rm calibrate-priors``, ``caig rm priors``);
- ``readers``: the tiny towers' word probabilities on w1big's ads at 32 and 64 px (``rm_perception_bound.py
  --keep``), read again by ``rm_perception_bound.py --probabilities`` and ``rm_skill_fidelity.py``;
- ``demo``: ``make demo``'s run (``caig run --local``), the models of ``online_ab.py``.

Groups: ``rm-world`` (w10, w1big, base, pm0), ``pcpo-world`` (pm10, rm-curriculum, w1, w1k), ``all``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# README "A curriculum for small RMs": the setting of rm_skill_curriculum.json (the RM that judges PCPO)
CURRICULUM = [
    "curriculum.side_warmup.enabled=true",
    "curriculum.teacher.enabled=true",
    "reward.learning_rate=0.0003",
    "reward.recipe.head_lr_scale=10",
    "reward.recipe.image_position=after_text",
    "curriculum.teacher.borrowed_per_product=8",
    "curriculum.teacher.pairs_per_product=28",
]
# README "Perception on borrowed backgrounds": the best setting (row 5 of Table 1)
BEST = [
    "curriculum.perception.enabled=true",
    "curriculum.perception.borrowed_per_product=48",
    "curriculum.perception.epochs=30",
    "curriculum.ad_utility.enabled=true",
    "curriculum.ad_utility.epochs=5",
    "curriculum.teacher.enabled=true",
    "curriculum.teacher.borrowed_per_product=8",
    "curriculum.teacher.pairs_per_product=28",
    "curriculum.teacher.utility_weight=1",
    "reward.recipe.image_position=after_text",
    "reward.learning_rate=0.0003",
    "reward.recipe.head_lr_scale=10",
]
# README "The composer": the best setting with 40 borrowed backgrounds for the teacher, 2 ad-utility epochs
BORROWED40 = [
    *(
        s
        for s in BEST
        if s.split("=")[0] not in ("curriculum.ad_utility.epochs", "curriculum.teacher.borrowed_per_product")
    ),
    "curriculum.ad_utility.epochs=2",
    "curriculum.teacher.borrowed_per_product=40",
]

BIG = ["world.n_products=1500", "world.n_events=30000000"]
SMALL_WORLD = [  # tests/conftest.py's small world
    "world.n_products=48",
    "world.n_creatives_per_product=5",
    "world.n_events=400000",
    "world.n_days=7",
    "world.image_size=64",
    "world.contact_sheet_products=4",
    "data.pairs.min_impressions=800",
]
WORLDS = {  # name: (seed, overrides)
    "w0": (0, []),
    "w1": (1, []),
    "w10": (10, BIG),
    "w1big": (1, BIG),
    "w1k": (1, ["world.n_products=1000", "world.n_events=1000000"]),
    "world-small": (0, SMALL_WORLD),
}
PMS = {  # name: (world it is pre-trained on, overrides of the model build and the pre-training)
    "pm0": ("w0", []),
    "pm10": ("w10", []),
    "pm0-64px": ("w0", ["mllm.tiny.image_size=64"]),
    "pm0-128px-p32": ("w0", ["mllm.tiny.image_size=128", "mllm.tiny.patch_size=32"]),
    "pm0-128px-p16": (
        "w0",
        ["mllm.tiny.image_size=128", "mllm.tiny.patch_size=16", "pretrain.max_length=384"],
    ),
    "pm0-l4": ("w0", ["mllm.tiny.text_layers=4", "mllm.tiny.text_intermediate_size=512"]),
}
READERS = {  # name: (pre-trained PM, image side)
    "tower_32px": ("pm0", 32),
    "tower_64px": ("pm0-64px", 64),
}
GROUPS = {
    "rm-world": ["w10", "w1big", "base", "pm0"],
    "pcpo-world": ["pm10", "rm-curriculum", "w1", "w1k"],
}


@dataclass
class Target:
    """Something to make under the root: ``done`` is its last output, ``steps`` what makes it."""

    help: str
    needs: list[str]
    done: Callable[[Path], Path]
    steps: Callable[[Path], list[Step]]


@dataclass
class Step:
    """One command (argv) or one library call (``call``), described by ``text`` for --dry-run."""

    text: str
    argv: list[str] = field(default_factory=list)
    call: Callable[[], None] | None = None
    done: Path | None = None  # skip the step when this exists (targets of several steps)


def caig(*argv: str, done: Path | None = None) -> Step:
    return Step("caig " + " ".join(argv), argv=[sys.executable, "-m", "caig", *argv], done=done)


def with_sets(overrides: list[str]) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def world_target(name: str) -> Target:
    seed, overrides = WORLDS[name]
    return Target(
        f"world seed {seed}" + (f" ({', '.join(overrides)})" if overrides else " (local profile)"),
        [],
        lambda root: root / name / "contact_sheet.png",  # written last
        lambda root: [
            caig(
                "world",
                "build",
                "--profile",
                "local",
                "--seed",
                str(seed),
                *with_sets(overrides),
                "--out",
                str(root / name),
            )
        ],
    )


def tasks_target(world: str) -> Target:
    return Target(
        f"pre-training task mix of {world}",
        [world],
        lambda root: root / f"tasks-{world}" / "tasks.json",
        lambda root: [
            caig("mllm", "tasks", "--world", str(root / world), "--out", str(root / f"tasks-{world}"))
        ],
    )


def base_of(pm: str) -> str:
    """The untrained model a PM is pre-trained from: ``base`` for pm0, its own build for the others."""
    return "base" if pm == "pm0" else f"{pm}-base"


def base_target(name: str, world: str, overrides: list[str]) -> Target:
    return Target(
        f"untrained tiny model built on {world}" + (f" ({', '.join(overrides)})" if overrides else ""),
        [world],
        lambda root: root / name / "config.json",
        lambda root: [
            caig(
                "mllm",
                "build",
                "--preset",
                "tiny",
                "--world",
                str(root / world),
                *with_sets(overrides),
                "--out",
                str(root / name),
            )
        ],
    )


def pm_target(name: str) -> Target:
    world, overrides = PMS[name]
    base = base_of(name)
    return Target(
        f"PM pre-trained on {world}"
        + (f" ({', '.join(overrides)})" if overrides else "")
        + f"; model in {name}/model",
        [base, f"tasks-{world}"],
        lambda root: root / name / "pretrain.json",  # written last
        lambda root: [
            caig(
                "pretrain",
                "--model",
                str(root / base),
                "--tasks",
                str(root / f"tasks-{world}"),
                *with_sets(overrides),
                "--out",
                str(root / name),
            )
        ],
    )


def rm_step(model: Path, world: Path, overrides: list[str], out: Path, shared: Path | None = None) -> Step:
    """Train one RM (training seed 0) as ``rm_skill.py`` does: training pairs of ``world`` by the RM's rule."""

    def train() -> None:
        from dataclasses import replace

        from caig.data.event_pairs import pairs_from_events
        from caig.logs import setup_logging
        from caig.profile import load_profile
        from caig.reward.curriculum.jobs import train_with_curriculum
        from caig.reward.data import attach_sources

        setup_logging()
        profile = load_profile("local", overrides)
        config = replace(profile.reward, seed=0)
        pairs, _ = pairs_from_events(world, config.train_pairs)
        source = attach_sources(pairs, world)
        train_with_curriculum(model, source, config, profile.curriculum, out, data_dir=world, shared=shared)

    text = f"train an RM (seed 0) from {model} on {world}'s pairs {' '.join(with_sets(overrides))} -> {out}"
    return Step(text, call=train)


def readers_steps(root: Path) -> list[Step]:
    steps = []
    for name, (pm, side) in READERS.items():
        argv = [
            sys.executable, os.path.relpath(HERE / "rm_perception_bound.py"), "--model", str(root / pm / "model"),
            "--train-world", str(root / "w10"), "--test-world", str(root / "w1big"), "--out", str(root / "readers"),
            "--cnn-epochs", "0", "--threads", "1", "--keep", str(root / "readers"), "--name", name,
            *with_sets([f"reward.image_side={side}", "curriculum.perception.borrowed_per_product=48", "curriculum.perception.epochs=30"]),
        ]  # fmt: skip
        done = root / "readers" / f"{name}_tiny_tower.npz"
        steps.append(Step(" ".join(["python", *argv[1:]]), argv=argv, done=done))
    return steps


def priors_steps(root: Path) -> list[Step]:
    rm, p = str(root / "rm-curriculum"), root / "priors"
    steps = [
        caig("rm", "calibrate-priors", "--rm", rm, "--world", str(root / "w0"), "--objective", objective,
             "--out", str(p / f"cal-{objective}"), done=p / f"cal-{objective}" / "prior_calibration.json")
        for objective in ("regret", "likelihood")
    ]  # fmt: skip
    for name, calibration in (
        ("default", None),
        ("calibrated", "cal-regret"),
        ("likelihood", "cal-likelihood"),
    ):
        extra = ["--calibration", str(p / calibration / "prior_calibration.json")] if calibration else []
        steps.append(
            caig("rm", "priors", "--rm", rm, "--world", str(root / "w1"), *extra, "--out", str(p / name),
                 done=p / name / "rm_priors.parquet")
        )  # fmt: skip
    return steps


def targets() -> dict[str, Target]:
    found: dict[str, Target] = {name: world_target(name) for name in WORLDS}
    found |= {f"tasks-{w}": tasks_target(w) for w in sorted({w for w, _ in PMS.values()})}
    found["base"] = base_target("base", "w0", [])
    for name, (world, overrides) in PMS.items():
        if name != "pm0":
            found[base_of(name)] = base_target(
                base_of(name), world, [o for o in overrides if o.startswith("mllm.")]
            )
        found[name] = pm_target(name)
    found["rm-curriculum"] = Target(
        "the curriculum RM (side warm-up, teacher with 8 borrowed backgrounds, pairs) from base on w10, seed 0",
        ["base", "w10"],
        lambda root: root / "rm-curriculum" / "train.json",
        lambda root: [rm_step(root / "base", root / "w10", CURRICULUM, root / "rm-curriculum")],
    )
    found["rm-borrowed40"] = Target(
        "row 5 with 40 borrowed backgrounds from pm0 on w10, seed 0 (rm-borrowed40/seed0)",
        ["pm0", "w10"],
        lambda root: root / "rm-borrowed40" / "seed0" / "train.json",
        lambda root: [
            rm_step(
                root / "pm0" / "model",
                root / "w10",
                BORROWED40,
                root / "rm-borrowed40" / "seed0",
                root / "shared",
            )
        ],
    )
    found["priors"] = Target(
        "the curriculum RM's priors on w1: default, calibrated on w0 (regret), likelihood fit on w0",
        ["rm-curriculum", "w0", "w1"],
        lambda root: root / "priors" / "likelihood" / "rm_priors.parquet",
        priors_steps,
    )
    found["readers"] = Target(
        "the 32-px and 64-px tiny towers' word probabilities on w1big (readers/tower_32px_tiny_tower.npz, ...)",
        ["pm0", "pm0-64px", "w10", "w1big"],
        lambda root: root / "readers" / "tower_64px_tiny_tower.npz",
        readers_steps,
    )
    found["demo"] = Target(
        "make demo's run: caig run --local --profile local (demo/steps.json)",
        [],
        lambda root: root / "demo" / "metrics.json",
        lambda root: [caig("run", "--local", "--profile", "local", "--out", str(root / "demo"))],
    )
    return found


def order(names: list[str], known: dict[str, Target]) -> list[str]:
    """``names`` and everything they need, each once, needs first."""
    ordered: list[str] = []

    def visit(name: str) -> None:
        if name in ordered:
            return
        for need in known[name].needs:
            visit(need)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def main() -> None:
    known = targets()
    choices = [*known, *GROUPS, "all"]
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"one of: {', '.join(choices)}")
    parser.add_argument("--root", type=Path, default=Path("runs/bench"), help="where targets are made")
    parser.add_argument("--dry-run", action="store_true", help="print what would run, run nothing")
    parser.add_argument("--list", action="store_true", help="list the targets and what they are")
    args = parser.parse_args()
    if args.list:
        for name, target in known.items():
            print(
                f"{name:16} {target.help}" + (f"  [needs {', '.join(target.needs)}]" if target.needs else "")
            )
        for name, members in GROUPS.items():
            print(f"{name:16} group: {', '.join(members)}")
        return
    unknown = [t for t in args.targets if t not in choices]
    if unknown or not args.targets:
        parser.error(
            f"name targets among: {', '.join(choices)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    wanted = [m for t in args.targets for m in (list(known) if t == "all" else GROUPS.get(t, [t]))]
    for name in order(wanted, known):
        target = known[name]
        if target.done(args.root).exists():
            print(f"{name}: there ({target.done(args.root)})", flush=True)
            continue
        for step in target.steps(args.root):
            if step.done is not None and step.done.exists():
                continue
            print(f"{name}: {step.text}", flush=True)
            if args.dry_run:
                continue
            if step.call is not None:
                step.call()
            else:
                subprocess.run(step.argv, check=True)


if __name__ == "__main__":
    main()

"""Table 1 (``ablation.json`` and ``ablation.md``) from rows trained as separate ``rm_skill.py`` jobs.

``caig rm ablation`` trains its rows in one command; on a machine of few cores the rows run better as
``rm_skill.py`` jobs side by side (one per row and seed, each with the row's switches). This puts their results
back into the table ``caig rm ablation`` writes, with the same code (``caig.reward.ablation``): per row the mean,
spread and skill; the full RM's margin over the base row against the largest seed spread.

    PYTHONPATH=src python3 benchmarks/rm_ablation_table.py --row 0=row0.json --row 5=row5.json \
        --out benchmarks/results --name rm_ablation_table
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provenance import provenance

from caig.reward.ablation import TABLE1_ROWS, ablation_table, markdown_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--row",
        action="append",
        required=True,
        type=row_argument,
        help="INDEX=RM_SKILL_JSON: a Table 1 row (0..5) and the rm_skill.py result of its seeds (repeatable)",
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--name", default="rm_ablation_table", help="file names (without .json / .md)")
    args = parser.parse_args()
    rows = sorted(args.row)
    sources = [json.loads(path.read_text()) for _, path in rows]
    for (index, path), source in zip(rows, sources, strict=True):
        check_row_switches(index, source["reward_config"], path)
    check_same_pairs(sources)
    first = sources[0]
    runs_by_row = {index: sorted(s["runs"], key=lambda r: r["seed"]) for (index, _), s in zip(rows, sources)}
    table = ablation_table(runs_by_row, first["ceiling"], first["train_pairs"], first["test_pairs"])
    for row, (_, path) in zip(table["rows"], rows, strict=True):
        row["source"] = path.name
    table = {**provenance(), **table, "train_world": first["train_world"], "test_world": first["test_world"]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(table, indent=2))
    (args.out / f"{args.name}.md").write_text(markdown_table(table))
    print(markdown_table(table))
    print(
        json.dumps(
            {k: table[k] for k in ("full_minus_base", "max_seed_spread", "full_beats_base_beyond_spread")}
        )
    )


def row_argument(text: str) -> tuple[int, Path]:
    """``INDEX=FILE`` -> (Table 1 row index, result file); a clear error for anything else."""
    index, sep, path = text.partition("=")
    if not sep or not index.isdigit() or int(index) >= len(TABLE1_ROWS) or not Path(path).is_file():
        raise argparse.ArgumentTypeError(
            f"--row {text!r}: write INDEX=FILE, INDEX a Table 1 row 0..{len(TABLE1_ROWS) - 1} and FILE an "
            "existing rm_skill.py result"
        )
    return int(index), Path(path)


def check_row_switches(index: int, reward: dict, path: Path) -> None:
    """A result belongs in row ``index`` only if it was trained with that row's switches (the start model, the
    pre-training switch, is the caller's to match: the result names its directory only)."""
    row = TABLE1_ROWS[index]
    wanted = {
        "head": "classification" if row.classification_head else "text",
        "use_caption": row.caption,
        "use_attributes": row.attributes,
        "point_loss": row.point_loss,
    }
    found = {
        **{k: reward[k] for k in ("head", "use_caption", "use_attributes")},
        "point_loss": reward["point_weight"] > 0,
    }
    if found != wanted:
        raise SystemExit(f"{path} was not trained as Table 1 row {index}: {found} (the row needs {wanted})")


def check_same_pairs(sources: list[dict]) -> None:
    """Rows are comparable only on the same training and test pairs: refuse results that differ."""
    for key in ("train_world", "test_world", "train_pairs", "test_pairs"):
        values = {s[key] for s in sources}
        if len(values) > 1:
            raise SystemExit(f"the rows were measured on different {key} ({sorted(values)}): run them alike")


if __name__ == "__main__":
    main()

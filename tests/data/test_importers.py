"""Import of a small file in the official CAIG release's layout, made from the small world's logs."""

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from caig.cli import main
from caig.data.config import CaigImportConfig
from caig.data.importers import import_caig_release, read_captions
from caig.world.events import read_events


@pytest.fixture(scope="module")
def release(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """click_data.json {item: [creatives]}, caption_public.json (JSON lines) and images/ of 12 products,
    plus 5 broken items; returns the folder and the expected per-creative totals."""
    root = tmp_path_factory.mktemp("caig-release")
    events = read_events(small_world_dir / "events")
    totals = events.groupby(["creative_id", "product_id"], as_index=False).agg(
        exp_impression_cnt=("clicked", "size"), exp_click_cnt=("clicked", "sum")
    )
    totals = totals[totals["product_id"].isin(sorted(totals["product_id"].unique())[:12])]
    creatives = pd.read_parquet(small_world_dir / "creatives.parquet").set_index("creative_id")
    (root / "images").mkdir()
    data: dict[str, list] = {}
    captions = []
    for i, row in enumerate(totals.itertuples()):
        digest = hashlib.sha1(row.creative_id.encode()).hexdigest()
        shutil.copy(
            small_world_dir / creatives.loc[row.creative_id, "image_path"], root / "images" / f"{digest}.png"
        )
        data.setdefault(f"item{row.product_id}", []).append(
            {
                "creative_id": row.creative_id,
                "item_id": row.product_id,
                "creative_image_hash": f"https://cdn.example.com/ads/{digest}",
                "exp_impression_cnt": int(row.exp_impression_cnt),
                "exp_click_cnt": int(row.exp_click_cnt),
            }
        )
        field = "new_caption" if i == 0 else "caption"
        if i != 1:  # one creative without a caption
            captions.append(
                {"creative_id": row.creative_id, field: creatives.loc[row.creative_id, "description"]}
            )
    first = data[next(iter(data))]
    data["itemBAD"] = [
        {"item_id": "PBAD", "exp_impression_cnt": 10, "exp_click_cnt": 1},  # no creative_id
        {"creative_id": "X1", "item_id": "PBAD", "exp_impression_cnt": "many", "exp_click_cnt": 1},
        {"creative_id": "X2", "item_id": "PBAD", "exp_impression_cnt": 0, "exp_click_cnt": 0},
        {"creative_id": "X3", "item_id": "PBAD", "exp_impression_cnt": 5, "exp_click_cnt": 6},
        dict(first[0]),  # the same creative listed twice
    ]
    (root / "click_data.json").write_text(json.dumps(data))
    (root / "caption_public.json").write_text("\n".join(json.dumps(c) for c in captions) + "\n")
    return root, totals


def test_import_counts_tables_and_rejects(release, tmp_path):
    root, totals = release
    report = import_caig_release(
        root / "click_data.json",
        tmp_path / "ds",
        CaigImportConfig(),
        root / "caption_public.json",
        root / "images",
    )
    n = len(totals)
    assert report["items_read"] == n + 5 and report["rows_imported"] == n and report["rows_rejected"] == 5
    assert report["reject_reasons"] == {
        "null_id": 1,
        "wrong_type": 1,
        "zero_impressions": 1,
        "clicks_exceed_impressions": 1,
        "duplicate_creative": 1,
    }
    assert report["captions_missing"] == 1 and report["images_missing"] == 0 and report["products"] == 12
    stats = pd.read_parquet(tmp_path / "ds" / "creative_stats.parquet")
    assert list(stats.columns) == ["creative_id", "product_id", "date", "segment", "impressions", "clicks"]
    merged = stats.merge(totals, on=["creative_id", "product_id"])
    assert len(merged) == n and (merged.impressions == merged.exp_impression_cnt).all()
    assert (merged.clicks == merged.exp_click_cnt).all() and set(stats.segment) == {"all"}
    creatives = pd.read_parquet(tmp_path / "ds" / "creatives.parquet")
    assert all(Path(p).is_file() for p in creatives.image_path)
    assert (creatives.description != "").sum() == n - 1
    rejected = pd.read_parquet(tmp_path / "ds" / "rejected.parquet")
    assert sorted(rejected.reason) == sorted(report["reject_reasons"])


def test_imported_release_feeds_validate_and_pairs(release, tmp_path, capsys):
    root, _ = release
    ds = tmp_path / "ds"
    main(
        [
            "data",
            "import-caig",
            "--clicks",
            str(root / "click_data.json"),
            "--captions",
            str(root / "caption_public.json"),
            "--images",
            str(root / "images"),
            "--date",
            "2026-10-07",
            "--out",
            str(ds),
        ]
    )
    assert json.loads(capsys.readouterr().out)["rows_imported"] > 0
    main(["data", "validate", "--stats", str(ds), "--out", str(tmp_path / "report"), "--as-of", "2026-10-08"])
    summary = json.loads((tmp_path / "report" / "validation.json").read_text())
    assert summary["success"] and set(summary["suites"]) == {"stats"}
    main(
        [
            "data",
            "pairs",
            "--stats",
            str(ds),
            "--creatives",
            str(ds / "creatives.parquet"),
            "--out",
            str(tmp_path / "pairs"),
            "--set",
            "data.pairs.min_impressions=800",
        ]
    )
    pairs = json.loads((tmp_path / "pairs" / "pairs.json").read_text())
    assert pairs["counts"]["pairs_with_images"] == pairs["counts"]["pairs"] > 0


def test_captions_as_a_json_object_and_bad_files(tmp_path):
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"C1": "a red sofa", "C2": {"new_caption": "a lamp"}}))
    assert read_captions(path, CaigImportConfig()) == {"C1": "a red sofa", "C2": "a lamp"}
    (tmp_path / "broken.json").write_text('{"a": [1\nnot json\n')
    with pytest.raises(SystemExit) as done:
        main(["data", "import-caig", "--clicks", str(tmp_path / "broken.json"), "--out", str(tmp_path / "o")])
    assert done.value.code == 2

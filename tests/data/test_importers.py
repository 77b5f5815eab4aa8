"""Import of the official CAIG release's format into a run's data directory, from the small world's logs."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from caig.cli import main
from caig.data.config import CaigImportConfig
from caig.data.events import read_events
from caig.data.importers import ReleaseFiles, import_caig_release, read_captions
from caig.world.release import export_release, logged_totals

N_PRODUCTS = 12


@pytest.fixture(scope="module")
def release(small_world_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release files of the small world's first 12 products, plus broken click items and products."""
    root = tmp_path_factory.mktemp("caig-release")
    export_release(small_world_dir, root, N_PRODUCTS)
    data = json.loads((root / "click_data.json").read_text())
    first = data[next(iter(data))]
    data["itemBAD"] = [
        {"item_id": "PBAD", "exp_impression_cnt": 10, "exp_click_cnt": 1},  # no creative_id
        {"creative_id": "X1", "item_id": "PBAD", "exp_impression_cnt": "many", "exp_click_cnt": 1},
        {"creative_id": "X2", "item_id": "PBAD", "exp_impression_cnt": 0, "exp_click_cnt": 0},
        {"creative_id": "X3", "item_id": "PBAD", "exp_impression_cnt": 5, "exp_click_cnt": 6},
        dict(first[0]),  # the same creative listed twice
        {**first[0], "creative_id": "X4", "item_id": "PNOPE"},  # a product the products file lacks
        {**first[0], "creative_id": "X5", "creative_image_hash": "https://cdn.example.com/ads/none"},
    ]
    (root / "click_data.json").write_text(json.dumps(data))
    products = (root / "products.json").read_text()
    extra = [
        {"image": "P00000.png", "new_caption": "no id"},
        {"id": "P00001", "image": "x.png", "new_caption": "twice"},
    ]
    extra += [
        {"id": "PNOCAP", "image": "P00000.png"},
        {"id": "PNOIMG", "image": "none.png", "new_caption": "t"},
    ]
    (root / "products.json").write_text(products + "".join(json.dumps(r) + "\n" for r in extra))
    return root


def test_import_writes_a_run_data_directory_and_counts_every_reject(release, small_world_dir, tmp_path):
    report = import_caig_release(ReleaseFiles.in_folder(release), tmp_path / "data", CaigImportConfig())
    totals = logged_totals(small_world_dir)
    catalog_ids = sorted(pd.read_parquet(small_world_dir / "catalog.parquet")["product_id"])[:N_PRODUCTS]
    totals = totals[totals["product_id"].isin(catalog_ids)]
    n = len(totals)
    assert report["rows_imported"] == n and report["rows_rejected"] == 7 and report["items_read"] == n + 7
    assert report["reject_reasons"] == {
        "null_id": 1,
        "wrong_type": 1,
        "zero_impressions": 1,
        "clicks_exceed_impressions": 1,
        "duplicate_creative": 1,
        "unknown_product": 1,
        "image_missing": 1,
    }
    assert report["products"] == N_PRODUCTS and report["products_rejected"] == 4
    assert report["product_reject_reasons"] == {
        "null_id": 1,
        "duplicate_product": 1,
        "caption_missing": 1,
        "image_missing": 1,
    }
    data = tmp_path / "data"
    assert not (data / "world.json").exists()
    events = read_events(data / "events")
    counted = events.groupby("creative_id").agg(impressions=("clicked", "size"), clicks=("clicked", "sum"))
    merged = totals.set_index("creative_id").join(counted, rsuffix="_imported")
    assert (merged.impressions == merged.impressions_imported).all() and (
        merged.clicks == merged.clicks_imported
    ).all()
    assert events["event_id"].is_unique and report["events"] == len(events)
    catalog = pd.read_parquet(data / "catalog.parquet")
    creatives = pd.read_parquet(data / "creatives.parquet")
    assert list(catalog.columns) == ["product_id", "title", "image_path"] and report["attributes"] == [
        "title"
    ]
    assert all((data / p).is_file() for p in [*catalog.image_path, *creatives.image_path])  # copied, relative
    assert (creatives.description != "").all()
    rejected = pd.read_parquet(data / "rejected.parquet")
    assert len(rejected) == 11 and set(rejected.file) == {"clicks", "products"}


def test_imported_data_feeds_ingest_validate_and_pairs(release, tmp_path, capsys):
    data, ds = tmp_path / "data", tmp_path / "ds"
    argv = ["data", "import", "--clicks", str(release / "click_data.json"), "--captions"]
    argv += [str(release / "caption_public.json"), "--images", str(release / "images"), "--products"]
    argv += [str(release / "products.json"), "--product-images", str(release / "product_images")]
    main([*argv, "--date", "2026-10-07", "--out", str(data)])
    assert json.loads(capsys.readouterr().out)["rows_imported"] > 0
    main(
        [
            "data",
            "ingest",
            "--events",
            str(data / "events"),
            "--creatives",
            str(data / "creatives.parquet"),
            "--out",
            str(ds),
            "--as-of",
            "2026-10-08",
        ]
    )
    main(["data", "validate", "--stats", str(ds), "--out", str(tmp_path / "report"), "--as-of", "2026-10-08"])
    summary = json.loads((tmp_path / "report" / "validation.json").read_text())
    assert summary["success"]
    main(
        [
            "data",
            "pairs",
            "--stats",
            str(ds),
            "--creatives",
            str(data / "creatives.parquet"),
            "--out",
            str(tmp_path / "pairs"),
            "--set",
            "data.pairs.min_impressions=800",
        ]
    )
    pairs = json.loads((tmp_path / "pairs" / "pairs.json").read_text())
    assert pairs["counts"]["pairs_with_images"] == pairs["counts"]["pairs"] > 0


def _import(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "data",
        "import",
        "--clicks",
        str(root / "click_data.json"),
        "--images",
        str(root / "images"),
        "--products",
        str(root / "products.json"),
        "--product-images",
        str(root / "product_images"),
        "--out",
        str(out),
        *extra,
    ]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
    return err[0]


def test_a_click_file_missing_a_required_field_names_it(release, tmp_path, capsys):
    renamed = tmp_path / "release"
    shutil.copytree(release, renamed)
    text = (renamed / "click_data.json").read_text().replace('"exp_click_cnt"', '"clicks"')
    (renamed / "click_data.json").write_text(text)
    with pytest.raises(SystemExit) as done:
        main(_import(renamed, tmp_path / "o"))
    assert done.value.code == 2
    line = _one_line_error(capsys)
    assert "'exp_click_cnt'" in line and "data.caig_import.clicks_field" in line


def test_a_release_without_images_is_refused(release, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as done:
        main(_import(release, tmp_path / "o", "--images", str(tmp_path / "empty")))
    assert done.value.code == 2
    line = _one_line_error(capsys)
    assert "no usable creative" in line and "image_missing" in line
    with pytest.raises(SystemExit) as done:
        main(_import(release, tmp_path / "o", "--images", str(tmp_path / "nowhere")))
    assert done.value.code == 2 and "--images" in _one_line_error(capsys)


def test_captions_as_a_json_object_and_bad_files(tmp_path, release, capsys):
    path = tmp_path / "captions.json"
    path.write_text(json.dumps({"C1": "a red sofa", "C2": {"new_caption": "a lamp"}}))
    assert read_captions(path, CaigImportConfig()) == {"C1": "a red sofa", "C2": "a lamp"}
    broken = tmp_path / "release"
    shutil.copytree(release, broken)
    (broken / "click_data.json").write_text('{"a": [1\nnot json\n')
    with pytest.raises(SystemExit) as done:
        main(_import(broken, tmp_path / "o"))
    assert done.value.code == 2 and "--clicks" in _one_line_error(capsys)

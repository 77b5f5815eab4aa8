"""`caig review export` -> answers filled in as a reviewer would -> `caig review import`, end to end."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from caig.cli import main
from caig.errors import UserError
from caig.evaluate.review_aggregate import import_batch
from caig.evaluate.review_export import read_manifest
from caig.world.loaded import load_world

PRODUCTS = 8


def _fake_run(root, world, offset, empty=None):
    """Rounds 0 and 1 of a run whose descriptions are the world's own creatives (a mix of matches)."""
    pids = world.catalog.product_id.tolist()[:PRODUCTS]
    for r in range(2):
        texts = [
            world.creatives.loc[world.creatives.product_id == pid, "description"].iloc[(r + offset + k) % 5]
            for k, pid in enumerate(pids)
        ]
        if empty is not None and r == 1:
            texts[empty] = ""  # unrenderable: no ad, must be counted, not dropped
        folder = root / f"round-{r:02d}"
        folder.mkdir(parents=True)
        pd.DataFrame({"product_id": pids, "description": texts}).to_parquet(folder / "heldout.parquet")
    return root


@pytest.fixture(scope="module")
def batch(tmp_path_factory, small_world_dir):
    """A batch of two methods x two rounds, every product, exported through the CLI."""
    root = tmp_path_factory.mktemp("review")
    world = load_world(small_world_dir)
    pcpo = _fake_run(root / "pcpo", world, 0)
    dpo = _fake_run(root / "dpo", world, 2, empty=3)
    main(
        ["review", "export", "--set", "render.image_size=64", "--run", f"pcpo={pcpo}", "--run", f"dpo={dpo}",
         "--data", str(small_world_dir), "--out", str(root / "batch"), "--batch-id", "t1",
         "--per-cell", str(PRODUCTS)]
    )  # fmt: skip
    return root / "batch"


def _oracle_answers(batch_dir, world):
    """What a perfect reviewer would answer: the world's oracle (the test's ground truth)."""
    manifest = read_manifest(batch_dir)
    return {
        item_id: world.judge_match(meta["product_id"], meta["description"])
        for item_id, meta in manifest["items"].items()
    }


def _write(path, answers, reviewer="ann", batch_id="t1"):
    path.write_text(json.dumps({"batch_id": batch_id, "reviewer": reviewer, "answers": answers}))
    return path


def test_export_writes_page_manifest_and_ads_blind(batch):
    manifest = read_manifest(batch)
    # 2 methods x 2 rounds x 8 products, less the one empty description
    assert len(manifest["items"]) == 2 * 2 * PRODUCTS - 1
    (bad,) = manifest["unrenderable"]
    assert (bad["method"], bad["round"], bad["description"]) == ("dpo", 1, "") and "empty" in bad["reason"]
    assert len(list((batch / "ads").glob("*.png"))) == len(manifest["items"])
    page = (batch / "review.html").read_text()
    assert all(f'name="{item_id}"' in page for item_id in manifest["items"])
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert "pcpo" not in text and "dpo" not in text
    methods = [manifest["items"][i]["method"] for i in sorted(manifest["items"])]
    assert methods != sorted(methods)  # shuffled, so the order does not give the method away


def test_round_trip_gives_the_reviewers_match_rate(batch, small_world_dir, tmp_path, capsys):
    world = load_world(small_world_dir)
    truth = _oracle_answers(batch, world)
    path = _write(tmp_path / "ann.json", [{"item_id": i, "answer": a} for i, a in truth.items()])
    out = tmp_path / "rates.json"
    main(["review", "import", "--batch", str(batch), "--answers", str(path), "--out", str(out)])
    result = json.loads(out.read_text())
    manifest = read_manifest(batch)
    assert (result["n_answers"], result["n_accepted"], result["n_rejected"]) == (len(truth), len(truth), 0)
    cells = {(c["method"], c["round"]): c for c in result["cells"]}
    assert set(cells) == {("dpo", 0), ("dpo", 1), ("pcpo", 0), ("pcpo", 1)}
    for (method, rnd), cell in cells.items():
        mine = [i for i, m in manifest["items"].items() if (m["method"], m["round"]) == (method, rnd)]
        kinds = [truth[i] for i in mine]
        assert cell["judged"] == len(mine) and cell["unanswered"] == 0
        assert cell["match_rate"] == pytest.approx(kinds.count("match") / len(kinds))
        assert cell["answers"] == {k: kinds.count(k) for k in ("match", "scale", "scene", "colour")}
        assert cell["ci_low"] <= cell["match_rate"] <= cell["ci_high"]
    assert cells[("dpo", 1)]["unrenderable"] == 1 and cells[("dpo", 1)]["judged"] == PRODUCTS - 1
    captured = capsys.readouterr()
    assert "| pcpo | 1 |" in captured.out
    assert f"{len(truth)} accepted, 0 rejected" in captured.err


def test_page_script_saves_answers_that_import_accepts(batch, tmp_path):
    """Run the page's own script under node with a stub DOM: the file it saves imports as answered."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the page's script cannot be run here")
    page = (batch / "review.html").read_text()
    script = page.split("<script>")[1].split("</script>")[0]
    ids = list(read_manifest(batch)["items"])
    picked = {i: ("match" if k % 3 else "colour") for k, i in enumerate(ids[:-2])}  # two left unanswered
    harness = (
        "const picked = " + json.dumps(picked) + "; const saved = {}; const els = {};\n"
        "global.CSS = {escape: s => s};\n"
        "global.document = {getElementById: id => els[id] || (els[id] = {value: ' ann ', textContent: '',"
        " classList: {toggle() {}}}),\n"
        '  querySelector: sel => { const id = sel.match(/name="(.*)"/)[1];'
        " return picked[id] ? {value: picked[id]} : null; },\n"
        "  createElement: () => ({click() { saved.name = this.download; }})};\n"
        "global.Blob = class { constructor(parts) { this.text = parts.join(''); } };\n"
        "global.URL = {createObjectURL: b => { saved.content = b.text; return 'blob:x'; }};\n"
        + script
        + "\ndocument.getElementById('save').onclick();\nconsole.log(JSON.stringify(saved));\n"
    )
    run = subprocess.run([node, "-e", harness], capture_output=True, text=True, check=True)
    saved = json.loads(run.stdout)
    assert saved["name"] == "t1-ann.json"
    path = tmp_path / saved["name"]
    path.write_text(saved["content"])
    result = import_batch(batch, [path])
    assert result["reviewers"] == ["ann"] and result["n_accepted"] == len(picked)
    assert sum(c["unanswered"] for c in result["cells"]) == 2
    assert sum(c["answers"]["colour"] for c in result["cells"]) == list(picked.values()).count("colour")


def test_bad_answers_are_named_and_counted(batch, tmp_path, capsys):
    ids = list(read_manifest(batch)["items"])
    answers = [{"item_id": i, "answer": "match"} for i in ids[:5]]
    answers += [
        {"item_id": "t1-9999", "answer": "match"},  # unknown item
        {"item_id": ids[5], "answer": "maybe"},  # not an A.2 kind
        {"item_id": ids[0], "answer": "scene"},  # the same reviewer twice
        "match",  # not an object
    ]
    path = _write(tmp_path / "bad.json", answers)
    with pytest.raises(SystemExit) as exit_info:
        main(["review", "import", "--batch", str(batch), "--answers", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "4 of 9 answers rejected" in err[0]
    assert "item 't1-9999': unknown item" in err[0] and f"item {ids[5]!r}: answer 'maybe'" in err[0]
    assert f"item {ids[0]!r}: answered twice by reviewer 'ann'" in err[0]

    out = tmp_path / "partial.json"
    main(
        [
            "review",
            "import",
            "--batch",
            str(batch),
            "--answers",
            str(path),
            "--skip-rejected",
            "--out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    assert (result["n_answers"], result["n_accepted"], result["n_rejected"]) == (9, 5, 4)
    assert [r["index"] for r in result["rejected"]] == [5, 6, 7, 8]
    assert sum(c["judged"] for c in result["cells"]) == 5
    assert "5 accepted, 4 rejected" in capsys.readouterr().err


def test_answers_of_another_batch_or_unreadable_are_errors(batch, tmp_path):
    other = _write(tmp_path / "other.json", [], batch_id="zz")
    with pytest.raises(UserError, match=r"other\.json: answers for batch 'zz', not 't1'"):
        import_batch(batch, [other])
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match=r"broken\.json: not a readable answers file"):
        import_batch(batch, [broken])


def test_two_reviewers_majority_ties_and_agreement(batch, tmp_path):
    a, b, c = list(read_manifest(batch)["items"])[:3]
    first = _write(tmp_path / "r1.json", [{"item_id": a, "answer": "match"}, {"item_id": b, "answer": "match"},
                                          {"item_id": c, "answer": "scene"}], reviewer="r1")  # fmt: skip
    second = _write(tmp_path / "r2.json", [{"item_id": a, "answer": "match"}, {"item_id": b, "answer": "colour"},
                                           {"item_id": c, "answer": "scale"}], reviewer="r2")  # fmt: skip
    result = import_batch(batch, [first, second])
    assert result["reviewers"] == ["r1", "r2"]
    assert result["reviewer_agreement"] == {"items": 3, "match_agreement": pytest.approx(2 / 3)}
    counts = {
        k: sum(cell["answers"][k] for cell in result["cells"]) for k in ("match", "scale", "scene", "colour")
    }
    # a: match (both); b: tie match/colour -> colour; c: tie scene/scale -> scale (TIE_ORDER)
    assert counts == {"match": 1, "scale": 1, "scene": 0, "colour": 1}
    assert sum(cell["tied"] for cell in result["cells"]) == 2


def _fails(args, capsys):
    """The one error line of a CLI call that must exit 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_export_errors_name_the_fix(tmp_path, small_world_dir, capsys):
    data = ["--data", str(small_world_dir), "--out", str(tmp_path / "b")]
    assert "round-00/heldout.parquet" in _fails(
        ["review", "export", "--run", f"pcpo={tmp_path}", *data], capsys
    )
    run = _fake_run(tmp_path / "pcpo", load_world(small_world_dir), 0)
    err = _fails(["review", "export", "--run", f"pcpo={run}", *data, "--rounds", "0,7"], capsys)
    assert "--rounds 7:" in err and "has rounds 0..1" in err
    err = _fails(["review", "export", "--run", f"pcpo={run}", "--data", str(tmp_path), "--out", str(tmp_path / "b")],
                 capsys)  # fmt: skip
    assert "no catalog.parquet" in err
    assert "METHOD=DIR" in _fails(["review", "export", "--run", str(run), *data], capsys)

"""``caig pcpo``: Algorithm 1 end to end, round by round, resumable.

Each round samples training products, rolls out two descriptions per product, lets the frozen RM choose,
trains one epoch of DPO (+ PCPO) on LoRA adapters, and writes ``OUT/round-NN/``: the adapter, the round's
preference pairs (``pairs.parquet``: what the RM chose, for audit and ``caig evaluate``), the round's
statistics (``round.json``, written last: a round without it is redone after a kill), and the policy's
descriptions for the held-out products (``heldout.parquet``), which ``caig evaluate`` judges. ``round-00``
holds the pre-trained PM's held-out descriptions, the baseline of every uplift.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from caig.distributed import from_main_process, is_main_process, join_process_group, process_device
from caig.errors import UserError
from caig.mllm.build import load_model, model_dir_of
from caig.mllm.generate import generate
from caig.mllm.instruct import catalog_attributes
from caig.mllm.templates import PM_TEMPLATES
from caig.mllm.token_budget import check_limit
from caig.pcpo.config import PCPOConfig
from caig.pcpo.engine import PolicyEngine, pcpo_deepspeed_config, start_engine
from caig.pcpo.mismatch import ProductInput
from caig.pcpo.rollout import PairJudge, RMJudge, longest_sequence, pairs_frame, question, rollout
from caig.pcpo.trainer import train_round
from caig.profile import Profile
from caig.typed_config import as_dict

log = logging.getLogger("caig.pcpo")
PRODUCT_ATTRIBUTES = ("product_id", "title", "category", "tags", "colour", "price")


def load_products(
    pm_dir: Path,
    tasks_dir: Path | None = None,
    eval_world_dir: Path | None = None,
    world_dir: Path | None = None,
) -> tuple[list[ProductInput], list[ProductInput]]:
    """(training products, held-out products) of the pre-training split, with images and attributes.

    The images are in the task mix's world unless ``world_dir`` says where it is now (a staged copy); with
    ``eval_world_dir`` the held-out products are that world's catalog (a held-out world seed).
    """
    report_path = pm_dir / "pretrain.json"
    if tasks_dir is None:
        if not report_path.is_file():
            raise UserError(
                f"{pm_dir} holds no pretrain.json; pass --pm a `caig pretrain` output or --tasks DIR"
            )
        tasks_dir = Path(json.loads(report_path.read_text())["tasks"])
    summary = json.loads((tasks_dir / "tasks.json").read_text())
    world_dir = Path(world_dir or summary["world_dir"])
    products = pd.read_parquet(tasks_dir / "products.parquet").sort_values("product_id")

    def inputs(rows: pd.DataFrame, root: Path) -> list[ProductInput]:
        keys = [k for k in PRODUCT_ATTRIBUTES if k in rows.columns]  # real catalogs may have the title only
        return [
            ProductInput(
                r["product_id"],
                Image.open(root / r["image_path"]).convert("RGBA"),
                {k: (list(r[k]) if k == "tags" else r[k]) for k in keys},
            )
            for r in rows.to_dict("records")
        ]

    train = inputs(products[products["split"] == "train"], world_dir)
    if eval_world_dir is None:
        return train, inputs(products[products["split"] == "heldout"], world_dir)
    catalog = pd.read_parquet(eval_world_dir / "catalog.parquet").sort_values("product_id")
    return train, inputs(catalog, eval_world_dir)


def heldout_descriptions(
    engine: PolicyEngine,
    processor: Any,
    products: list[ProductInput],
    config: PCPOConfig,
    attributes: list[str],
) -> pd.DataFrame:
    """One sampled description per held-out product, with a fixed seed and template: comparable by round.

    Every process generates them (under ZeRO-3 all must gather the parameters); the main one's are returned.
    """
    questions = [question(p, i % len(PM_TEMPLATES), attributes) for i, p in enumerate(products)]
    with engine.whole_model():
        texts = generate(
            engine.policy,
            processor,
            [p.image for p in products],
            questions,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=config.seed + 10_007,
        )
    texts = from_main_process(texts)
    return pd.DataFrame({"product_id": [p.product_id for p in products], "description": texts})


def run_pcpo(
    profile: Profile,
    pm_dir: str | Path,
    rm_dir: str | Path | None,
    out: str | Path,
    method: str | None = None,
    tasks_dir: str | Path | None = None,
    eval_world_dir: str | Path | None = None,
    judge: PairJudge | None = None,
    world_dir: str | Path | None = None,
) -> dict:
    """Run (or resume) the configured rounds of ``method`` (default: the profile's) into ``out``.

    Held-out descriptions are written for the pre-training split's held-out products, or for the products of
    ``eval_world_dir`` (another world seed) when given. The RM in ``rm_dir`` chooses chosen/rejected unless
    another ``judge`` is given (a diagnostic: the paper's judge is the RM). ``world_dir``: where the task
    mix's images are, if its world moved.
    """
    from caig.render.factory import make_renderer

    if (judge is None) == (rm_dir is None):
        raise UserError(
            "PCPO needs one judge: the trained reward model (caig pcpo --rm RM; run_pcpo's rm_dir) or, in "
            "run_pcpo, another judge= instead of rm_dir"
        )
    config = profile.pcpo if method is None else _with_method(profile.pcpo, method)
    pm_dir, out = Path(pm_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_products, heldout = load_products(pm_dir, _path(tasks_dir), _path(eval_world_dir), _path(world_dir))
    heldout = heldout[: config.eval_products]
    attributes = catalog_attributes(profile.mllm.instruct_attributes, train_products[0].attributes)
    deepspeed = pcpo_deepspeed_config(config)  # a bad config stops the run before the model loads
    model, processor = _policy(profile, config, pm_dir, train_products + heldout, attributes)
    if judge is None:
        judge = _rm_judge(rm_dir)
    renderer = make_renderer(profile.render)
    done = _resume(model, config, out)
    engine = start_engine(model, config, deepspeed)
    _write_baseline(model, engine, processor, heldout, config, attributes, out)
    rounds = [json.loads((out / f"round-{r:02d}" / "round.json").read_text()) for r in done]
    for r in range(len(done) + 1, config.rounds + 1):
        rounds.append(
            _one_round(
                r, engine, processor, train_products, heldout, judge, renderer, config, attributes, out
            )
        )
    summary = {
        "method": config.method,
        "rounds": rounds,
        "config": as_dict(config),
        "pm": str(pm_dir),
        "rm": str(rm_dir) if rm_dir else None,
        "judge": type(judge).__name__,
        "heldout_products": len(heldout),
        "eval_world": str(eval_world_dir) if eval_world_dir else None,
    }
    if is_main_process():
        (out / "pcpo.json").write_text(json.dumps(summary, indent=2))
    return summary


def _path(path: str | Path | None) -> Path | None:
    return Path(path) if path else None


def _policy(
    profile: Profile, config: PCPOConfig, pm_dir: Path, products: list[ProductInput], attributes: list[str]
) -> tuple[Any, Any]:
    """The PM to train: loaded with the same seed on every process, its longest input checked against
    ``pcpo.max_length``, placed on this process's device and wrapped in fresh LoRA adapters."""
    from caig.mllm.pretrain import lora_wrap

    torch.manual_seed(config.seed)  # the same LoRA initialisation on every process
    model, processor = load_model(model_dir_of(pm_dir), dtype=profile.mllm.dtype)
    check_limit(
        "pcpo.max_length",
        config.max_length,
        longest_sequence(processor, products, attributes, config.max_new_tokens),
        f"a product image, the longest PM prompt and {config.max_new_tokens} new tokens",
    )
    model.to(process_device())
    join_process_group()
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return lora_wrap(model, config), processor


def _rm_judge(rm_dir: str | Path | None) -> RMJudge:
    """The paper's judge: the trained RM in ``rm_dir``."""
    from caig.reward.scoring import RewardScorer

    return RMJudge(RewardScorer.from_dir(rm_dir))


def _resume(model: Any, config: PCPOConfig, out: Path) -> list[int]:
    """The rounds already finished in ``out`` (as the main process sees them); the last one's adapter is
    loaded into ``model`` so the run goes on from there."""
    done = from_main_process(_finished_rounds(out))  # every process decides as the main one
    if done:
        _load_adapter(model, out / f"round-{done[-1]:02d}" / "adapter")
        log.info("resuming %s after round %d", config.method, done[-1])
    return done


def _write_baseline(
    model: Any,
    engine: PolicyEngine,
    processor: Any,
    heldout: list[ProductInput],
    config: PCPOConfig,
    attributes: list[str],
    out: Path,
) -> None:
    """Round 0: the held-out descriptions of the PM before any round (adapters off), written once."""
    if from_main_process(not (out / "round-00" / "heldout.parquet").exists()):
        with model.disable_adapter():
            baseline = heldout_descriptions(engine, processor, heldout, config, attributes)
        if is_main_process():
            _save_heldout(out / "round-00", baseline)


def _one_round(
    r: int,
    engine: PolicyEngine,
    processor: Any,
    train_products: list[ProductInput],
    heldout: list[ProductInput],
    judge: Any,
    renderer: Any,
    config: PCPOConfig,
    attributes: list[str],
    out: Path,
) -> dict:
    started = time.perf_counter()
    rng = np.random.default_rng([config.seed, r])
    picks = rng.choice(
        len(train_products), size=min(config.products_per_round, len(train_products)), replace=False
    )
    sampled = [train_products[i] for i in picks]
    pairs, stats = rollout(
        engine.policy,
        processor,
        sampled,
        judge,
        renderer,
        config,
        attributes,
        rng,
        train_products,
        whole_model=engine.whole_model,
    )
    training = train_round(engine, processor, pairs, config, rng)
    folder = out / f"round-{r:02d}"
    engine.save_adapter(folder / "adapter")
    descriptions = heldout_descriptions(engine, processor, heldout, config, attributes)
    if not is_main_process():  # every process generated (ZeRO-3 gathers on all); the main one writes
        return {}
    pairs_frame(pairs).to_parquet(folder / "pairs.parquet", index=False)
    _save_heldout(folder, descriptions)
    record = {
        "round": r,
        "rollout": asdict(stats),
        "training": training,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "round.json").write_text(json.dumps(record, indent=2))
    log.info(
        "%s round %d/%d: %d pairs (%d identical, %d unrenderable), loss %.4f, %.1f s",
        config.method,
        r,
        config.rounds,
        stats.pairs,
        stats.identical,
        stats.unrenderable,
        training["loss"],
        record["seconds"],
    )
    return record


def _with_method(config: PCPOConfig, method: str) -> PCPOConfig:
    from dataclasses import replace

    try:
        return replace(config, method=method)
    except ValueError as err:
        raise UserError(f"--method {method}: {err}") from None


def _finished_rounds(out: Path) -> list[int]:
    rounds = sorted(int(p.parent.name.split("-")[1]) for p in out.glob("round-*/round.json"))
    return [r for i, r in enumerate(rounds, start=1) if r == i]  # contiguous from round 1


def _load_adapter(model: Any, path: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(path / "adapter_model.safetensors"))


def _save_heldout(folder: Path, frame: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "heldout.parquet", index=False)

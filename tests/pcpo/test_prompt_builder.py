"""One prompt builder: PCPO trains on exactly the token ids the PM server generates from."""

from __future__ import annotations

from pathlib import Path

import torch

from caig.mllm.build import build_tiny, load_model, save_model
from caig.mllm.encode import IGNORE_INDEX, encode_example
from caig.pcpo.loop import PRODUCT_ATTRIBUTES
from caig.pcpo.mismatch import ProductInput
from caig.pcpo.rollout import question
from caig.profile import Profile, load_profile
from caig.serving.pm_service import PromptService
from caig.world.loaded import load_world

SYSTEM = "A chat between a curious human and an artificial intelligence assistant."


class GenerateSpy:
    """The real model, recording the prompt ids ``generate`` is called with."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __getattr__(self, name):
        return getattr(self.model, name)

    def eval(self):
        self.model.eval()
        return self

    def generate(self, **kwargs):
        self.calls.append(kwargs["input_ids"].clone())
        return self.model.generate(**kwargs)


def test_pcpo_trains_on_the_prompt_ids_the_pm_server_generates_from(
    tmp_path: Path, small_profile: Profile, small_world_dir: Path
):
    profile = load_profile("local", [f"mllm.system_prompt={SYSTEM}", "serving.pm_template=3"])
    model, processor = build_tiny(profile.mllm, small_world_dir)
    pm_dir = save_model(model, processor, tmp_path / "pm")
    world = load_world(small_world_dir)
    pid = str(world.catalog["product_id"].iloc[0])
    row = {"product_id": pid, **world.products.loc[pid].to_dict()}
    row["tags"] = list(row["tags"])

    # PCPO: the PM as `run_pcpo` loads it, the question of a rollout, the ids its log-probs are taken on.
    pcpo_model, pcpo_processor = load_model(pm_dir)
    product = ProductInput(pid, world.product_image(pid), {k: row[k] for k in PRODUCT_ATTRIBUTES})
    q = question(product, 3, profile.mllm.instruct_attributes)
    encoded = encode_example(pcpo_processor, product.image, q, "a sunny beach", max_length=512)
    n_prompt = int((encoded["labels"] == IGNORE_INDEX).sum())
    trained_prompt = encoded["input_ids"][:n_prompt]

    # The PM server: the same saved PM, asked for the same product.
    served_model, served_processor = load_model(pm_dir)
    spy = GenerateSpy(served_model)
    service = PromptService(spy, served_processor, profile.serving, profile.mllm.instruct_attributes, world)
    service.describe([{"product_id": pid, "n": 1, "seed": 0}])
    served_prompt = spy.calls[0][0]

    assert torch.equal(trained_prompt, served_prompt)
    assert pcpo_processor.tokenizer.decode(served_prompt).startswith(f"<s>{SYSTEM} USER:")


def test_a_model_keeps_its_system_prompt_and_refuses_another(tmp_path: Path, small_world_dir: Path):
    import pytest

    from caig.errors import UserError

    profile = load_profile("local", [f"mllm.system_prompt={SYSTEM}"])
    model, processor = build_tiny(profile.mllm, small_world_dir)
    pm_dir = save_model(model, processor, tmp_path / "pm")
    _, loaded = load_model(pm_dir)
    assert loaded.chat_template == processor.chat_template
    with pytest.raises(UserError, match="another system prompt"):
        load_model(pm_dir, system="Be brief.")

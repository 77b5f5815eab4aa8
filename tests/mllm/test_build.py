"""The tiny preset: built from config, saved, loaded back with from_pretrained, runs forward and generate."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoProcessor, LlavaNextForConditionalGeneration

from caig.cli import main
from caig.errors import UserError
from caig.mllm.build import build_or_load, load_model
from caig.mllm.chat import render
from caig.mllm.config import MLLMConfig
from caig.world.loaded import load_world


def test_saved_tiny_model_loads_with_from_pretrained(tiny_model_dir):
    model = LlavaNextForConditionalGeneration.from_pretrained(tiny_model_dir, local_files_only=True)
    processor = AutoProcessor.from_pretrained(tiny_model_dir, local_files_only=True)
    assert type(processor.image_processor).__name__ == "LlavaNextImageProcessorPil"
    assert model.config.image_token_index == processor.tokenizer.image_token_id
    assert model.config.text_config.vocab_size == len(processor.tokenizer)


def test_tiny_model_takes_an_image_and_few_image_tokens(tiny, small_world_dir):
    model, processor = tiny
    world = load_world(small_world_dir)
    image = world.product_image(world.catalog.product_id[0]).convert("RGB")
    text = render(processor, "What category of product is shown in this image?", "sneakers")
    batch = processor(images=[image], text=[text], return_tensors="pt", add_special_tokens=False)
    n_image_tokens = int((batch["input_ids"] == processor.tokenizer.image_token_id).sum())
    assert 0 < n_image_tokens <= 64
    with torch.no_grad():
        out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss)


def test_special_tokens_are_not_word_prefixes(tiny):
    _, processor = tiny
    tokens = processor.tokenizer.convert_ids_to_tokens(
        processor.tokenizer("sneakers in a city street").input_ids
    )
    assert not any(t in processor.tokenizer.all_special_tokens for t in tokens)
    assert processor.tokenizer.decode(processor.tokenizer("neon glow").input_ids) == "neon glow"


def test_same_config_builds_same_weights(small_profile, small_world_dir):
    a, _ = build_or_load(small_profile.mllm, small_world_dir)
    b, _ = build_or_load(small_profile.mllm, small_world_dir)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_7b_preset_is_never_downloaded(tmp_path):
    with pytest.raises(UserError, match="model_path"):
        build_or_load(MLLMConfig(preset="llava-v1.6-7b"))
    with pytest.raises(UserError, match="holds no model"):
        load_model(tmp_path)


def test_cli_build_writes_a_loadable_model(tmp_path, small_world_dir, capsys):
    main(
        [
            "mllm",
            "build",
            "--preset",
            "tiny",
            "--world",
            str(small_world_dir),
            "--out",
            str(tmp_path / "m"),
            "--set",
            "mllm.tiny.text_layers=1",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    model, _ = load_model(tmp_path / "m")
    assert summary["parameters"] == sum(p.numel() for p in model.parameters())
    assert model.config.text_config.num_hidden_layers == 1


def test_a_random_llava_v16_costs_the_production_token_counts(tmp_path):
    """The smoke runs' model: LLaVA-v1.6-7b's architecture and processor at small sizes, random weights."""
    from PIL import Image

    from caig.mllm.build import save_model
    from caig.mllm.token_budget import image_tokens
    from caig.profile import load_profile

    profile = load_profile("smoke-production")
    model, processor = build_or_load(profile.mllm)
    assert image_tokens(processor, 512, 512) == 2928 and image_tokens(processor, 1024, 512) == 1752
    assert model.config.vision_config.patch_size == 14 and model.config.vision_feature_layer == -2
    text = render(processor, "Describe a background for 'a red lamp'.", "a sunny beach")
    assert text.startswith(f"<s>{profile.mllm.system_prompt} USER: <image>\n")
    image = Image.new("RGB", (512, 512), (200, 30, 30))
    batch = processor(images=[image], text=[text], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        assert torch.isfinite(model(**batch, labels=batch["input_ids"]).loss)
    loaded, loaded_processor = load_model(save_model(model, processor, tmp_path / "pm"))
    assert loaded_processor.chat_template == processor.chat_template  # the system prompt travels with it

"""One round's training: the reference is the policy with its LoRA adapters off, equal to the frozen base."""

from __future__ import annotations

import copy
from dataclasses import replace

import torch

from caig.mllm.build import load_model
from caig.mllm.pretrain import lora_wrap
from caig.pcpo.logprobs import response_logprobs
from caig.pcpo.loop import load_products
from caig.pcpo.rollout import question
from caig.pcpo.trainer import PreferencePair, reference_logprobs


def test_reference_with_adapters_off_equals_the_frozen_base(pcpo_profile, pm_dir):
    config = pcpo_profile.pcpo
    model, processor = load_model(pm_dir / "model")
    base = copy.deepcopy(model).eval()
    policy = lora_wrap(model, config)
    with torch.no_grad():  # LoRA's B starts at zero; a trained round's adapters change the output
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0.0, 0.5)
    products, _ = load_products(pm_dir)
    attributes = list(pcpo_profile.mllm.instruct_attributes)
    pairs = [
        PreferencePair(p, question(p, 0, attributes), "in a cozy living room", "on a marble counter")
        for p in products[:3]
    ]
    reference = reference_logprobs(policy, processor, pairs, replace(config, method="dpo"))
    args = ([p.product.image for p in pairs], [p.question for p in pairs])
    kwargs = {"batch_size": 2, "max_length": config.max_length}
    for key, answers in (("chosen", [p.chosen for p in pairs]), ("rejected", [p.rejected for p in pairs])):
        frozen = response_logprobs(base, processor, *args, answers, **kwargs)
        torch.testing.assert_close(reference[key], frozen, rtol=1e-5, atol=1e-4)
        adapted = response_logprobs(policy, processor, *args, answers, **kwargs)
        assert (adapted - frozen).abs().max() > 1e-2  # the adapters are on outside the reference

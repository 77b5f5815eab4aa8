"""The fast log-prob path (``caig.pcpo.logprobs``: shared prefixes packed into one row, answer-only log-probs
in chunks) against the plain one (every sequence its own row, full logits, ``log_softmax``).

float32 on CPU, the tiny PM with LoRA adapters made non-zero: per-sequence log-probs, the DPO and PCPO losses
and the gradient of every LoRA parameter agree within 1e-5 (relative, ``atol`` 1e-5 for values near zero).
The batch holds what the step packs: chosen and rejected on one prompt (answers with a common first word),
a textual mismatch (same image, other text: shares the image's tokens) and a visual one (other image: a row
of its own). The checks can fail: a mask that lets an answer see its sibling, or a shift by one, differs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from caig.mllm.build import load_model
from caig.mllm.encode import encode_example
from caig.mllm.pretrain import lora_wrap
from caig.pcpo import logprobs
from caig.pcpo.logprobs import pack, response_logprobs
from caig.pcpo.loop import load_products
from caig.pcpo.mismatch import textual_mismatch, visual_mismatch
from caig.pcpo.rollout import question
from caig.pcpo.trainer import PreferencePair, _columns, pair_logprobs, preference_losses, reference_logprobs

TOL = {"rtol": 1e-5, "atol": 1e-5}
ANSWERS = [
    ("in a cozy living room, warm light", "in a marble kitchen"),
    ("on a wooden desk", "beside a window with plants, soft daylight"),
    ("in a cozy living room, warm light", "on a beach at sunset"),
]


def _policy(pm_dir, config, attention: str, checkpointing: bool = False):
    model, processor = load_model(pm_dir / "model")
    model.set_attn_implementation(attention)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(0)  # LoRA's A: the same on every policy built here
    policy = lora_wrap(model, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # LoRA's B starts at zero: non-zero adapters make policy and reference differ
        for name, parameter in policy.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.3)
    return policy, processor


@pytest.fixture(scope="module")
def pairs(pcpo_profile, pm_dir):
    products, _ = load_products(pm_dir)
    attributes = list(pcpo_profile.mllm.instruct_attributes)
    rng = np.random.default_rng(0)
    out = []
    for i, (chosen, rejected) in enumerate(ANSWERS):
        product = products[i]
        if i % 2 == 0:
            mismatched, kind = textual_mismatch(product, products, rng), "textual"
        else:
            mismatched, kind = visual_mismatch(product, rng), "visual"
        out.append(
            PreferencePair(
                product,
                question(product, i, attributes),
                chosen,
                rejected,
                mismatched,
                question(mismatched, i, attributes),
                mismatch_kind=kind,
            )
        )
    return out


@pytest.fixture(scope="module")
def config(pcpo_profile):
    return replace(pcpo_profile.pcpo, method="pcpo", lora_dropout=0.0, batch_size=len(ANSWERS))


def _flat(pairs, with_mismatch=True):
    cols = _columns(pairs, with_mismatch)
    return [[x for col in cols.values() for x in col[i]] for i in range(3)]


def test_the_batch_shares_prompts_and_images(pm_dir, pairs, config):
    """What the other tests rely on: pairs share a row, a textual mismatch joins it, a visual one does not."""
    _, processor = load_model(pm_dir / "model")
    images, questions, answers = _flat(pairs)
    examples = [
        encode_example(processor, im, q, a, config.max_length)
        for im, q, a in zip(images, questions, answers, strict=True)
    ]
    packed = pack(examples, True, processor.tokenizer.image_token_id)
    n = len(pairs)
    for i, pair in enumerate(pairs):
        rows = [packed.where[i][0], packed.where[n + i][0], packed.where[2 * n + i][0]]
        assert rows[0] == rows[1]  # chosen and rejected: one prompt
        assert (rows[2] == rows[0]) == (pair.mismatch_kind == "textual")
    tokens = sum(len(e["input_ids"]) for e in examples)
    assert sum(r.length for r in packed.rows) < 0.7 * tokens  # 654 of 1024 tokens here
    unshared = pack(examples, False, processor.tokenizer.image_token_id)
    assert len(unshared.rows) == len(examples)


def test_answers_to_one_image_and_question_encode_as_alone(pm_dir, pairs, config):
    """``encode`` processes a pair's image once for chosen and rejected: the tensors ``encode_example``
    makes of each sequence alone."""
    _, processor = load_model(pm_dir / "model")
    images, questions, answers = _flat(pairs)
    together = logprobs.encode(processor, images, questions, answers, config.max_length)
    for example, image, q, a in zip(together, images, questions, answers, strict=True):
        alone = encode_example(processor, image, q, a, config.max_length)
        assert set(example) == set(alone)
        for key, value in alone.items():
            assert torch.equal(example[key], value), key


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_fast_logprobs_equal_plain(pm_dir, pairs, config, attention, monkeypatch):
    policy, processor = _policy(pm_dir, config, attention)
    images, questions, answers = _flat(pairs)
    args = (policy, processor, images, questions, answers)
    kwargs = {"batch_size": len(answers), "max_length": config.max_length}
    plain = response_logprobs(*args, **kwargs, mode="plain")
    monkeypatch.setattr(logprobs, "CHUNK", 7)  # several chunks, one of them short
    for mode in ("fast", "unshared"):
        torch.testing.assert_close(response_logprobs(*args, **kwargs, mode=mode), plain, **TOL)
    # smaller forwards (whole rows each) give the same
    torch.testing.assert_close(
        response_logprobs(*args, batch_size=2, max_length=config.max_length), plain, **TOL
    )


@pytest.mark.parametrize("method", ["dpo", "pcpo"])
def test_losses_and_lora_gradients_equal_plain(pm_dir, pairs, config, method, monkeypatch):
    """Reference (adapters off) and policy, the step's losses, then every LoRA gradient; checkpointing on, as
    the 7B runs it (the LM head's chunks are recomputed in backward too)."""
    config = replace(config, method=method)
    monkeypatch.setattr(logprobs, "CHUNK", 5)
    results = {}
    for mode in ("plain", "fast"):
        policy, processor = _policy(pm_dir, config, "sdpa", checkpointing=True)
        ref = reference_logprobs(policy, processor, pairs, config, mode=mode)
        policy.train()
        pi = pair_logprobs(policy, processor, pairs, config, grad=True, mode=mode)
        total, dpo, pcpo = preference_losses(pi, ref, config)
        total.mean().backward()
        grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.requires_grad}
        results[mode] = (ref, pi, total.detach(), dpo.detach(), pcpo.detach(), grads)
    (ref, pi, total, dpo, pcpo, grads), plain = results["fast"], results["plain"]
    for key in ref:
        torch.testing.assert_close(ref[key], plain[0][key], **TOL)
        torch.testing.assert_close(pi[key].detach(), plain[1][key].detach(), **TOL)
    for got, want in zip((total, dpo, pcpo), plain[2:5], strict=True):
        torch.testing.assert_close(got, want, **TOL)
    assert (pcpo.abs() > 0).all() == (method == "pcpo")
    assert set(grads) == set(plain[5]) and len(grads) > 0
    for name, grad in grads.items():
        assert grad.abs().max() > 0, name  # every adapter learns something from this batch
        torch.testing.assert_close(grad, plain[5][name], **TOL, msg=name)


def test_a_mask_that_lets_answers_see_each_other_differs(pm_dir, pairs, config, monkeypatch):
    """The checks above can fail: a plain causal mask over a packed row (the rejected answer sees the chosen
    one), or hidden states one position late, give other log-probs: off by 100x the tolerance or more."""
    policy, processor = _policy(pm_dir, config, "sdpa")
    images, questions, answers = _flat(pairs, with_mismatch=False)
    args = (policy, processor, images, questions, answers, len(answers), config.max_length)
    plain = response_logprobs(*args, mode="plain")
    torch.testing.assert_close(response_logprobs(*args), plain, **TOL)
    n = len(pairs)

    def causal(rows, length, style, dtype, device):
        mask = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        return mask.expand(len(rows), 1, length, length)

    with monkeypatch.context() as patch:
        patch.setattr(logprobs, "tree_mask", causal)
        leaky = response_logprobs(*args)
    torch.testing.assert_close(leaky[:n], plain[:n], **TOL)  # chosen comes first: it sees nothing else
    assert (leaky[n:] - plain[n:]).abs().min() > 1e-3  # each rejected answer saw its chosen one

    targets = logprobs.answer_targets

    def late(examples, packed, rows, length):
        sources, ids, owners = targets(examples, packed, rows, length)
        return sources + 1, ids, owners

    with monkeypatch.context() as patch:
        patch.setattr(logprobs, "answer_targets", late)
        shifted = response_logprobs(*args)
    assert (shifted - plain).abs().min() > 1e-3


def test_bf16_weights_run_the_float32_adapters_under_autocast(pm_dir, pairs, config):
    """bf16 weights (the 7B on a GPU): PEFT keeps the adapters in float32, and autocast runs their matmuls in
    bf16 (without it every adapter casts its input up to float32). Fast and plain agree to bf16's precision."""
    model, processor = load_model(pm_dir / "model", dtype="bfloat16")
    policy = lora_wrap(model, config)
    adapters = [m for n, m in policy.named_modules() if n.endswith("lora_A.default")]
    assert adapters and all(m.weight.dtype == torch.float32 for m in adapters)
    seen = set()
    hooks = [m.register_forward_hook(lambda m, i, out: seen.add(out.dtype)) for m in adapters]
    images, questions, answers = _flat(pairs)
    args = (policy, processor, images, questions, answers, len(answers), config.max_length)
    fast = response_logprobs(*args)
    assert seen == {torch.bfloat16}
    for hook in hooks:
        hook.remove()
    plain = response_logprobs(*args, mode="plain")
    torch.testing.assert_close(fast, plain, rtol=1e-3, atol=1e-2)


def test_chunked_head_equals_log_softmax_and_runs_once_when_sharded(monkeypatch):
    """The chunks (recomputed in backward) give log_softmax's values and gradients; a head DeepSpeed ZeRO-3
    partitions (it marks its parameters ``ds_id``) runs once on all rows, so every process gathers it as
    often as the others whatever its answer count."""
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    rows = []
    head.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
    hidden = torch.randn(23, 8, requires_grad=True)
    targets = torch.randint(0, 50, (23,))
    weights = torch.randn(23)
    want = head(hidden).log_softmax(-1).gather(1, targets[:, None]).squeeze(1)
    (want_grad,) = torch.autograd.grad((want * weights).sum(), hidden)
    monkeypatch.setattr(logprobs, "CHUNK", 5)
    for sharded, calls in ((False, [5, 5, 5, 5, 3]), (True, [23])):
        if sharded:
            head.weight.ds_id = 0
        rows.clear()
        got = logprobs.chunked_token_logprobs(hidden, targets, head)
        assert rows == calls
        (grad,) = torch.autograd.grad((got * weights).sum(), hidden)
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(grad, want_grad, **TOL)


def test_reference_forwards_are_whole_pairs_whatever_the_process_count():
    """``pcpo.batch_size`` sequences a forward at most, whole pairs: a batch of 4 PCPO pairs runs one pair a
    forward, DPO two; the shares of 2 processes (``local_share``) are cut into the chunks 1 process cuts."""
    from caig.pcpo.config import PCPOConfig
    from caig.pcpo.trainer import local_share, pair_chunks

    pcpo, dpo = PCPOConfig(batch_size=4), PCPOConfig(method="dpo", batch_size=4)
    assert pair_chunks(4, pcpo) == [range(0, 1), range(1, 2), range(2, 3), range(3, 4)]
    assert pair_chunks(4, dpo) == [range(0, 2), range(2, 4)]
    assert pair_chunks(3, dpo) == [range(0, 2), range(2, 3)]
    assert pair_chunks(2, PCPOConfig(batch_size=1)) == [range(0, 1), range(1, 2)]  # at least a pair
    for config in (pcpo, dpo):
        one = [list(c) for c in pair_chunks(4, config)]
        shares = [local_share(range(4), rank, 2)[0] for rank in (0, 1)]
        two = [[share[i] for i in c] for share in shares for c in pair_chunks(len(share), config)]
        assert two == one


@pytest.mark.parametrize("method", ["dpo", "pcpo"])
def test_one_process_and_two_run_the_same_reference_forwards(pm_dir, pairs, config, method, monkeypatch):
    """A global batch of 4 pairs on 1 process and its halves on 2: the reference goes through the same
    forwards (the same sequences, in the same order), so its log-probs are equal bit for bit; the policy runs
    one forward a share (4 pairs against 2 + 2), equal to float32 rounding. tests/distributed/
    test_pcpo_processes.py holds the trained weights of 1 and 2 processes to 1e-4."""
    from caig.pcpo import trainer

    config = replace(config, method=method, batch_size=4)
    batch = [*pairs, pairs[0]]
    policy, processor = _policy(pm_dir, config, "sdpa")
    forwards = []
    encoded = trainer.encoded_logprobs

    def recorded(model, processor, examples, *args, **kwargs):
        forwards.append([tuple(e["input_ids"].tolist()) for e in examples])
        return encoded(model, processor, examples, *args, **kwargs)

    monkeypatch.setattr(trainer, "encoded_logprobs", recorded)
    runs = {}
    for name, shares in (("one", [batch]), ("two", [batch[:2], batch[2:]])):
        forwards.clear()
        ref = [reference_logprobs(policy, processor, share, config) for share in shares]
        references = list(forwards)
        policy.train()
        pi = [pair_logprobs(policy, processor, share, config, grad=True) for share in shares]
        runs[name] = (references, len(forwards) - len(references), ref, pi)
    (one, policy_one, ref1, pi1), (two, policy_two, ref2, pi2) = runs["one"], runs["two"]
    assert len(one) == (4 if method == "pcpo" else 2)  # one pair or two a forward
    assert one == two
    assert (policy_one, policy_two) == (1, 2)  # one forward a share
    for key in ref1[0]:
        assert torch.equal(ref1[0][key], torch.cat([r[key] for r in ref2]))
        torch.testing.assert_close(pi1[0][key].detach(), torch.cat([p[key].detach() for p in pi2]), **TOL)

"""Summed log-probabilities of answers under the PM (the DPO / PCPO forward), the fast way and the plain way.

Fast (``response_logprobs``), two levers, both exact:

- Shared prefixes run once. Sequences that begin alike are packed into one row as a prefix tree: a pair's
  chosen and rejected share their image and question, a textual mismatch shares the image. Every token of the
  tree is one position of the row; a sequence's tokens attend to their own ancestors only (a 4-D attention
  mask) at the positions they have in their own sequence, so each answer sees exactly the context it sees
  alone, and the prompt's tokens (image features included) go through the network once instead of two or
  three times. A sequence joins the row with which it shares the longest prefix when that prefix holds its
  image (without an image: its whole prompt); otherwise it starts a row. (Every prompt begins with the same
  system line: sharing only that would make one long row, whose dense mask costs more attention than the
  few tokens saved.)
- No (B, T, V) logits. The LM head runs only on the hidden states that predict answer tokens, in chunks whose
  logits are recomputed in backward, so memory holds one chunk x vocabulary at a time.

Plain (``mode="plain"``): every sequence its own row, logits at every position, ``log_softmax``
(``caig.pcpo.loss.sequence_logprob``). It is the definition; tests/pcpo/test_fast_logprobs.py holds the fast
path's log-probs, losses and LoRA gradients to it.

The dense 4-D mask is understood by the ``sdpa`` and ``eager`` attention implementations; under any other
(FlashAttention, flex) sequences are not shared, and only the log-prob lever applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from caig.mllm.encode import IGNORE_INDEX, Collator, encode_answers, stack_patches
from caig.pcpo.loss import sequence_logprob

CHUNK = 1024  # answer tokens whose logits exist at once: 1024 x 32k fp32 = 128 MiB
MASKED_ATTENTION = ("sdpa", "eager")  # implementations that take a dense 4-D mask as given
PAD_MULTIPLE = 8  # row length rounded up: aligned masks for the memory-efficient SDPA kernel


@dataclass
class _Segment:
    """Tokens appended to a row for one sequence: ``[start, end)``, after ancestor ``attach`` (-1: a root)."""

    start: int
    end: int
    attach: int


@dataclass
class _Row:
    """A prefix tree of sequences laid out as one row of the batch."""

    ids: list[torch.Tensor] = field(default_factory=list)  # token ids of the segments, in order
    positions: list[torch.Tensor] = field(default_factory=list)  # each token's position in its own sequence
    segments: list[_Segment] = field(default_factory=list)
    images: list[int] = field(default_factory=list)  # the image of each run of image tokens, in row order
    keys: list[torch.Tensor] = field(default_factory=list)  # per member: its tokens, image tokens per image
    nodes: list[torch.Tensor] = field(default_factory=list)  # per member: the row index of each token
    length: int = 0

    def longest_prefix(self, key: torch.Tensor) -> tuple[int, int]:
        """(member, length) of the longest common prefix of ``key`` with a member's key ((-1, 0): none)."""
        best, best_len = -1, 0
        for m, other in enumerate(self.keys):
            n = min(len(other), len(key))
            differ = (other[:n] != key[:n]).nonzero()
            common = int(differ[0]) if len(differ) else n
            if common > best_len:
                best, best_len = m, common
        return best, best_len

    def add(self, key: torch.Tensor, ids: torch.Tensor, image: int | None, member: int, shared: int) -> None:
        """Place a sequence after its first ``shared`` tokens, which are ``member``'s first ``shared``."""
        prefix = self.nodes[member][:shared] if shared else torch.zeros(0, dtype=torch.long)
        new = torch.arange(self.length, self.length + len(ids) - shared)
        self.segments.append(_Segment(self.length, self.length + len(new), int(prefix[-1]) if shared else -1))
        self.ids.append(ids[shared:])
        self.positions.append(torch.arange(shared, len(ids)))
        if image is not None and (key[shared:] < 0).any():  # the image's tokens are in the new part
            self.images.append(image)
        self.keys.append(key)
        self.nodes.append(torch.cat([prefix, new]))
        self.length += len(new)


@dataclass
class _Packed:
    """Sequences as rows: ``where[s]`` = (row, member) of sequence ``s``; the distinct images."""

    rows: list[_Row]
    where: list[tuple[int, int]]
    images: list[dict[str, torch.Tensor]]


def pack(
    examples: Sequence[dict[str, torch.Tensor]], share: bool, image_token_id: int | None = None
) -> _Packed:
    """Rows of prefix trees (``share``) or one row per sequence, from ``encode_example`` outputs.

    Image tokens are keyed by their image (equal pixels: the same image), so two sequences share an image's
    tokens only when they show the same image.
    """
    images: list[dict[str, torch.Tensor]] = []
    by_digest: dict[tuple, list[int]] = {}  # a cheap digest of the pixels -> images with it
    rows: list[_Row] = []
    where = []
    for ex in examples:
        ids = ex["input_ids"]
        image = None
        key = ids
        if "pixel_values" in ex:
            if image_token_id is None:
                raise ValueError("sequences with images need the image token's id to be packed")
            pixels, sizes = ex["pixel_values"], ex["image_sizes"]
            digest = (tuple(pixels.shape), tuple(sizes.tolist()), float(pixels.reshape(-1)[::997].sum()))
            same = by_digest.setdefault(digest, [])
            image = next(
                (i for i in same if images[i]["pixel_values"] is pixels or torch.equal(images[i]["pixel_values"], pixels)),
                None,
            )  # fmt: skip
            if image is None:
                images.append({"pixel_values": pixels, "image_sizes": sizes})
                image = len(images) - 1
                same.append(image)
            key = torch.where(ids == image_token_id, -1 - image, ids)
        # what a sequence must share to join a row: its image, or without one its whole prompt
        needed = int((key < 0).nonzero()[-1]) + 1 if image is not None else _prompt_length(ex)
        best = (-1, -1, 0)  # row, member, shared length
        if share:
            for r, row in enumerate(rows):
                member, shared = row.longest_prefix(key)
                if shared > best[2]:
                    best = (r, member, shared)
        r, member, shared = best
        if shared < needed:
            rows.append(_Row())
            r, member, shared = len(rows) - 1, -1, 0
        rows[r].add(key, ids, image, member, shared)
        where.append((r, len(rows[r].keys) - 1))
    return _Packed(rows, where, images)


def _prompt_length(example: dict[str, torch.Tensor]) -> int:
    return int((example["labels"] != IGNORE_INDEX).nonzero()[0])


def row_batch(
    packed: _Packed,
    rows: Sequence[int],
    pad_id: int,
    mask_style: str,
    dtype: torch.dtype,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Model inputs of ``rows`` on ``device``: ids, positions, the attention mask (4-D when a row holds
    several sequences, else the usual 2-D padding mask), pixels of the rows' images in row order."""
    images = [packed.images[i] for r in rows for i in packed.rows[r].images]
    rows = [packed.rows[r] for r in rows]
    length = max(r.length for r in rows)
    length = -(-length // PAD_MULTIPLE) * PAD_MULTIPLE
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : row.length] = torch.cat(row.ids)
        positions[i, : row.length] = torch.cat(row.positions)
    batch = {"input_ids": input_ids, "position_ids": positions}
    if all(len(r.segments) == 1 for r in rows):
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            attention[i, : row.length] = 1
        batch["attention_mask"] = attention
    if images:
        batch["pixel_values"] = stack_patches([im["pixel_values"] for im in images]).to(dtype)
        batch["image_sizes"] = torch.stack([im["image_sizes"] for im in images])
    batch = {k: v.to(device) for k, v in batch.items()}
    if "attention_mask" not in batch:  # made where it is used: (B, L, L) is large on a CPU, quick on a GPU
        batch["attention_mask"] = tree_mask(rows, length, mask_style, dtype, device)
    return batch


def tree_mask(
    rows: Sequence[_Row], length: int, style: str, dtype: torch.dtype, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(B, 1, L, L): a token attends to itself and its ancestors; padding attends to itself only (no empty
    softmax row). ``style``: ``sdpa`` (True = attend) or ``eager`` (additive: 0 or the dtype's minimum)."""
    allowed = torch.eye(length, dtype=torch.bool, device=device).repeat(len(rows), 1, 1)
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    for i, row in enumerate(rows):
        for seg in row.segments:
            n = seg.end - seg.start
            if seg.attach >= 0:  # the ancestors are the attach token's row, all before the segment
                allowed[i, seg.start : seg.end, : seg.start] = allowed[i, seg.attach, : seg.start]
            allowed[i, seg.start : seg.end, seg.start : seg.end] = causal[:n, :n]
    allowed = allowed.unsqueeze(1)
    if style == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def answer_targets(
    examples: Sequence[dict[str, torch.Tensor]], packed: _Packed, rows: Sequence[int], length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every answer token of the sequences in ``rows``: the flat index (row x ``length`` + position) of
    the hidden state that predicts it, its id, and its sequence's index."""
    local = {r: i for i, r in enumerate(rows)}
    sources, targets, owners = [], [], []
    for s, (r, member) in enumerate(packed.where):
        if r not in local:
            continue
        labels = examples[s]["labels"]
        answer = (labels[1:] != IGNORE_INDEX).nonzero().squeeze(1) + 1  # positions of answer tokens
        nodes = packed.rows[r].nodes[member]
        sources.append(local[r] * length + nodes[answer - 1])
        targets.append(labels[answer])
        owners.append(torch.full((len(answer),), s, dtype=torch.long))
    return torch.cat(sources), torch.cat(targets), torch.cat(owners)


def token_logprobs(hidden: torch.Tensor, targets: torch.Tensor, lm_head: Callable) -> torch.Tensor:
    """log p(target | hidden) for rows of ``hidden`` (N, H): the LM head, log-sum-exp in float32, gather."""
    logits = lm_head(hidden).float()
    return logits.gather(1, targets.unsqueeze(1)).squeeze(1) - logits.logsumexp(dim=1)


def chunked_token_logprobs(
    hidden: torch.Tensor, targets: torch.Tensor, lm_head: Any, chunk: int | None = None
) -> torch.Tensor:
    """``token_logprobs`` over ``chunk`` (default ``CHUNK``) rows at a time; with gradients, each chunk's
    logits are recomputed in backward instead of kept (only ``hidden`` is saved).

    A head sharded by DeepSpeed ZeRO-3 is gathered for its forward only, and every call gathers it on every
    process: it runs once, on all the rows (memory: answer tokens x vocabulary, still no prompt position),
    so that processes with other answer lengths make the same collectives.
    """
    recompute = not hasattr(lm_head.weight, "ds_id")  # ZeRO-3 marks the parameters it partitions
    chunk = (chunk or CHUNK) if recompute else max(len(targets), 1)
    parts = []
    for start in range(0, len(targets), chunk):
        h, t = hidden[start : start + chunk], targets[start : start + chunk]
        if recompute and torch.is_grad_enabled() and h.requires_grad:
            parts.append(checkpoint(token_logprobs, h, t, lm_head, use_reentrant=False))
        else:
            parts.append(token_logprobs(h, t, lm_head))
    return torch.cat(parts)


def mixed_precision(model: Any) -> AbstractContextManager:
    """bf16 / fp16 weights: autocast to that dtype. PEFT keeps LoRA adapters in float32 (for the optimizer);
    without autocast each adapter casts its input up and runs its matmuls in float32, the slow path of a GPU.
    float32 models: nothing changes."""
    dtype = model.dtype
    if dtype in (torch.bfloat16, torch.float16):
        return torch.autocast(device_type=model.device.type, dtype=dtype)
    return nullcontext()


def attention_implementation(model: Any) -> str:
    config = model.config
    text = getattr(config, "text_config", None) or config
    return str(getattr(text, "_attn_implementation", None) or "eager")


MODES = ("fast", "unshared", "plain")  # both levers; the log-prob lever only; the definition


def encode(
    processor, images: Sequence, questions: Sequence[str], answers: Sequence[str], max_length: int
) -> list[dict[str, torch.Tensor]]:
    """``encode_example`` of every (image, question, answer), what ``encoded_logprobs`` takes; answers to
    the same image object and question are encoded together, the image processed once (``encode_answers``)."""
    groups: dict[tuple[int, str], list[int]] = {}
    for i, (image, question) in enumerate(zip(images, questions, strict=True)):
        groups.setdefault((id(image), question), []).append(i)
    out: list[dict[str, torch.Tensor]] = [{}] * len(answers)
    for indices in groups.values():
        first = indices[0]
        encoded = encode_answers(
            processor, images[first], questions[first], [answers[i] for i in indices], max_length
        )
        for i, example in zip(indices, encoded, strict=True):
            out[i] = example
    return out


def response_logprobs(
    model,
    processor,
    images: Sequence,
    questions: Sequence[str],
    answers: Sequence[str],
    batch_size: int,
    max_length: int,
    grad: bool = False,
    forward=None,
    mode: str = "fast",
) -> torch.Tensor:
    """Summed log-probability of each answer given its image and question: (N,).

    ``forward`` runs a batch (default ``model``): the DDP or DeepSpeed wrapper when the pass trains.
    ``batch_size``: sequences per forward (a forward holds whole rows, at least one). ``mode``: ``fast``
    (shared prefixes, answer-only log-probs), ``unshared`` (every sequence its own row, answer-only
    log-probs) or ``plain`` (one row per sequence, full logits, ``log_softmax``: the definition).
    """
    examples = encode(processor, images, questions, answers, max_length)
    return encoded_logprobs(model, processor, examples, batch_size, grad, forward, mode)


def encoded_logprobs(
    model,
    processor,
    examples: Sequence[dict[str, torch.Tensor]],
    batch_size: int,
    grad: bool = False,
    forward=None,
    mode: str = "fast",
) -> torch.Tensor:
    """``response_logprobs`` of sequences already encoded (``encode``): a step encodes its sequences once
    for the reference and the policy."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not len(examples):
        return torch.zeros(0)
    forward = forward or model
    if mode == "plain":
        return _plain_logprobs(model, processor, examples, batch_size, grad, forward)
    style = attention_implementation(model)
    image_token = getattr(processor.tokenizer, "image_token_id", None)
    packed = pack(examples, mode == "fast" and style in MASKED_ATTENTION, image_token)
    lm_head = model.get_output_embeddings()
    pad_id = processor.tokenizer.pad_token_id
    out = torch.zeros(len(examples), device=model.device)
    for rows in _row_batches(packed, batch_size):
        batch = row_batch(packed, rows, pad_id, style, model.dtype, model.device)
        length = batch["input_ids"].shape[1]
        sources, targets, owners = (
            x.to(model.device) for x in answer_targets(examples, packed, rows, length)
        )
        no_logits = torch.zeros(batch["input_ids"].shape, dtype=torch.bool, device=model.device)
        with torch.set_grad_enabled(grad), mixed_precision(model):
            # the final norm's output, and the LM head on no position: logits come from the answer rows only
            hidden = forward(
                **batch, output_hidden_states=-1, logits_to_keep=no_logits, use_cache=False
            ).hidden_states[-1]
            hidden = hidden.reshape(-1, hidden.shape[-1])[sources]
            out = out.index_add(0, owners, chunked_token_logprobs(hidden, targets, lm_head))
    return out


def _row_batches(packed: _Packed, batch_size: int) -> list[list[int]]:
    """Consecutive rows, as many as hold at most ``batch_size`` sequences (at least one row)."""
    batches, current, count = [], [], 0
    for r, row in enumerate(packed.rows):
        n = len(row.keys)
        if current and count + n > batch_size:
            batches.append(current)
            current, count = [], 0
        current.append(r)
        count += n
    return batches + [current] if current else batches


def _plain_logprobs(model, processor, examples, batch_size: int, grad: bool, forward) -> torch.Tensor:
    """The definition: one row per sequence, full logits, ``log_softmax`` (``sequence_logprob``)."""
    collate = Collator(processor)
    out = []
    for start in range(0, len(examples), batch_size):
        batch = {k: v.to(model.device) for k, v in collate(examples[start : start + batch_size]).items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
        labels = batch.pop("labels")
        with torch.set_grad_enabled(grad), mixed_precision(model):
            logits = forward(**batch).logits
            out.append(sequence_logprob(logits.float(), labels))
    return torch.cat(out)

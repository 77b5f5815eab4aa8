"""Our DPO and PCPO steps against TRL's DPOTrainer on one GPU, in one process: same model shape, batch, tokens.

``--shape text`` (default), the shape of TRL's published DPO figures: the Llama-7B text model (Vicuna-7B,
LLaVA-v1.6-7B's language model), a 640-token prompt and 64-token responses, batch 8 pairs. ``--shape llava``:
LLaVA-v1.6-7B itself (CLIP ViT-L/14-336, the v1.6 grid), a 512-pixel product image (2,000-odd image tokens),
a 60-word question and 40-token responses, batch 8; PCPO's mismatches alternate textual / visual. Both: LoRA
r128 / alpha 256 on the language model's q/k/v/o/gate/up/down, gradient checkpointing (non-reentrant), bf16
weights with bf16 autocast, SDPA attention, AdamW; random weights built from configs (nothing downloaded).

- TRL: ``trl.DPOTrainer`` (``peft_config``: TRL wraps the model; the reference is the policy with its
  adapters off, computed every step; TRL's fused LM head makes no (B, T, V) logits). Text: on a
  ``LlamaForCausalLM``, the dataset tokenized once before training. LLaVA: the processor as processing class;
  TRL's collator processes images and text in the data loader, outside the step it times.
- ours: ``caig.pcpo.trainer._step`` through ``caig.pcpo.engine.start_engine`` on a
  ``LlavaNextForConditionalGeneration`` (text: text-only prompts, a tiny vision tower that never runs). Its
  step encodes its pairs (images included) and computes the reference, all timed. DPO: chosen + rejected;
  PCPO: also the chosen under a mismatched input.
- ablations of our DPO step: ``unshared`` (each sequence its own row: no shared prompt), ``plain`` (that,
  with full logits and log_softmax: the step before the fast path) and ``fp32-lora`` (no autocast: the float32
  LoRA adapters PEFT keeps make every adapter matmul float32, as ``caig pcpo`` did before).

Alternated: ``--rounds`` rounds of ``--steps`` steps of each, the first round a warm-up left out of the figures.
Per method: samples (pairs) per second, model TFLOP/s (language-model forward FLOPs of the tokens it runs,
reference once + policy forward and backward at 2x; the checkpointing recompute only in
``hardware_tflops_per_s``), and peak memory alone (its own weights, adapters and optimizer state plus the
peak above that during its steps).

    PYTHONPATH=src python3 benchmarks/trainer_vs_trl.py --out benchmarks/results                  # GPU
    PYTHONPATH=src python3 benchmarks/trainer_vs_trl.py --shape llava --out benchmarks/results    # GPU
    PYTHONPATH=src python3 benchmarks/trainer_vs_trl.py --cpu-smoke --out /tmp/trl-smoke          # tiny

Needs the ``bench`` extra (``pip install -c constraints.txt -e '.[train,bench]'``: TRL and datasets).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from mllm_gpu import SHAPES, build_model, created_in  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from provenance import peak_bf16_tflops, provenance  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback  # noqa: E402

from caig.mllm.build import make_processor  # noqa: E402
from caig.mllm.chat import split_prompt_answer  # noqa: E402
from caig.mllm.encode import IGNORE_INDEX, encode_example, model_image  # noqa: E402
from caig.mllm.pretrain import lora_wrap  # noqa: E402
from caig.mllm.tokenizer import static_corpus, train_tokenizer  # noqa: E402
from caig.pcpo import logprobs  # noqa: E402
from caig.pcpo.config import LLM_LINEAR_MODULES, PCPOConfig  # noqa: E402
from caig.pcpo.engine import start_engine  # noqa: E402
from caig.pcpo.mismatch import ProductInput, mask_patches  # noqa: E402
from caig.pcpo.trainer import PreferencePair, _columns, _step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# text: prompt and response tokens; llava: question words after the image (~70 tokens) and response tokens
RUNS = {
    ("text", "7b"): dict(prompt=640, response=64, batch=8, lora_r=128, lora_alpha=256, rounds=4, steps=2),
    ("text", "cpu-smoke"): dict(prompt=40, response=8, batch=2, lora_r=8, lora_alpha=16, rounds=2, steps=1),
    ("llava", "7b"): dict(prompt=60, response=40, batch=8, lora_r=128, lora_alpha=256, rounds=3, steps=2),
    ("llava", "cpu-smoke"): dict(prompt=10, response=8, batch=2, lora_r=8, lora_alpha=16, rounds=2, steps=1),
}
LM_ONLY = (
    rf".*language_model.*\.({'|'.join(LLM_LINEAR_MODULES)})"  # lora_wrap's targets: not CLIP, not the head
)


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step of the HF Trainer (CUDA-synchronised)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        _sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        _sync()
        self.times.append(time.perf_counter() - self._start)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _allocated() -> int:
    return torch.cuda.memory_allocated() if torch.cuda.is_available() else 0


# ---------------------------------------------------------------------------------------------------------
# Texts of exactly the token counts asked for


def one_token_words(tokenizer, n: int = 400) -> list[str]:
    """Words of the corpus that are one token each after a space (so a text of k of them is k tokens)."""
    words = []
    for word in dict.fromkeys(w for text in static_corpus() for w in text.split()):
        if word.isalpha() and len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) == 1:
            words.append(word)
            if len(words) == n:
                break
    return words


def fit(make, count, target: int) -> str:
    """``make(k)`` for the k whose ``count`` is ``target`` (a word is a token: start from one word's count)."""
    k = max(1, target - count(make(1)) + 1)
    for _ in range(target):
        n = count(make(k))
        if n == target:
            return make(k)
        k += 1 if n < target else -1
        if k < 1:
            break
    raise SystemExit(f"no text of {target} tokens from these words")


def make_texts(processor, words: list[str], prompt: int, response: int, index: int) -> dict[str, str]:
    """Pair ``index``'s question and a mismatched one, ``prompt`` tokens each, and its two answers of
    ``response`` tokens; every pair's texts begin with other words (no two pairs share a prompt)."""

    def text(offset: int, step: int):
        return lambda k: " ".join(words[(offset + step * i) % len(words)] for i in range(k))

    def prompt_tokens(q: str) -> int:
        ex = encode_example(processor, None, q, "x", 10**6)
        return int((ex["labels"] != IGNORE_INDEX).nonzero()[0])

    def answer_tokens(q: str, a: str) -> int:
        return int((encode_example(processor, None, q, a, 10**6)["labels"] != IGNORE_INDEX).sum())

    question = fit(text(13 * index, 1), prompt_tokens, prompt)
    mismatched = fit(text(7 + 13 * index, 3), prompt_tokens, prompt)
    chosen = fit(text(1 + 5 * index, 2), lambda a: answer_tokens(question, a), response)
    rejected = fit(text(2 + 5 * index, 2), lambda a: answer_tokens(question, a), response)
    return {"question": question, "mismatched": mismatched, "chosen": chosen, "rejected": rejected}


# ---------------------------------------------------------------------------------------------------------
# FLOPs of the tokens a method runs


def forward_flops(text: LlamaConfig, rows: list[tuple[int, int]], answer_tokens: int) -> float:
    """Forward FLOPs of the language model: ``rows`` of (tokens, attended query-key pairs), the LM head on
    ``answer_tokens`` rows (both trainers score answer tokens only)."""
    h, layers = text.hidden_size, text.num_hidden_layers
    kv = h * text.num_key_value_heads // text.num_attention_heads
    linear = layers * (2 * h * h + 2 * h * kv + 3 * h * text.intermediate_size)  # q, o; k, v; MLP
    tokens = sum(t for t, _ in rows)
    pairs = sum(p for _, p in rows)
    return 2.0 * linear * tokens + 4.0 * h * layers * pairs + 2.0 * h * text.vocab_size * answer_tokens


def causal_rows(lengths: list[int]) -> list[tuple[int, int]]:
    return [(n, n * (n + 1) // 2) for n in lengths]


def step_sequences(processor, pairs, method: str, max_length: int) -> list[dict[str, torch.Tensor]]:
    """The encoded sequences of one step (chosen, rejected and, for PCPO, mismatched)."""
    cols = _columns(pairs, method != "dpo")
    return [
        encode_example(processor, image, q, a, max_length)
        for col in cols.values()
        for image, q, a in zip(*col, strict=True)
    ]


def our_rows(processor, examples, shared: bool) -> list[tuple[int, int]]:
    """(tokens, attended pairs) of the rows our step runs: prefix trees (``caig.pcpo.logprobs.pack``) or
    one row per sequence. A token attends to its ancestors and itself: its position in its sequence + 1."""
    if not shared:
        return causal_rows([len(e["input_ids"]) for e in examples])
    packed = logprobs.pack(examples, True, getattr(processor.tokenizer, "image_token_id", None))
    return [(r.length, int((torch.cat(r.positions) + 1).sum())) for r in packed.rows]


def step_flops(forward: float) -> dict[str, float]:
    """Reference forward + policy forward + backward (2x forward); hardware adds the checkpointing recompute."""
    model = forward + 3 * forward
    return {"model": model, "hardware": model + forward}


# ---------------------------------------------------------------------------------------------------------
# The two trainers


def build_trl(
    shape: dict, processor, run: dict, rows: list[dict], llava: bool, device: str, dtype, out, timer
):
    """TRL's DPOTrainer, its dataset our pairs' rendered texts (and images), in the same order.

    Text: a ``LlamaForCausalLM`` of the text shape, the tokenizer as processing class (TRL tokenizes the
    dataset once). LLaVA: the same ``LlavaNextForConditionalGeneration`` ours trains, the processor as
    processing class (TRL processes images and text in its collator, outside its timed step).
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    tokenizer = processor.tokenizer
    if llava:
        model = build_model(shape, processor, dtype, device)
        model.set_attn_implementation("sdpa")
    else:
        config = LlamaConfig(
            **shape["text"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        config._attn_implementation = "sdpa"
        with created_in(dtype, device):
            model = LlamaForCausalLM(config)
    rows = [rows[i % len(rows)] for i in range(run["batch"] * run["steps"])]
    data = Dataset.from_dict({k: [r[k] for r in rows] for k in rows[0]})
    args = DPOConfig(
        output_dir=str(out),
        per_device_train_batch_size=run["batch"],
        gradient_accumulation_steps=1,
        max_steps=run["steps"],
        learning_rate=2e-5,
        lr_scheduler_type="cosine",
        beta=0.5,
        max_length=None,
        bf16=dtype == torch.bfloat16,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        use_cpu=device == "cpu",
        dataloader_num_workers=0,
        seed=0,
    )
    lora = LoraConfig(
        r=run["lora_r"],
        lora_alpha=run["lora_alpha"],
        lora_dropout=0.0,
        target_modules=LM_ONLY if llava else list(LLM_LINEAR_MODULES),
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=processor if llava else tokenizer,
        peft_config=lora,
        callbacks=[timer],
    )
    if llava:  # tokenized in the collator: count one batch's tokens
        batch = trainer.data_collator([dict(r) for r in rows[: run["batch"]]])
        lengths = batch["attention_mask"].sum(1).tolist()
        return trainer, {
            "sequences": sorted(set(lengths)),
            "completion": sorted(set(batch["completion_mask"].sum(1).tolist())),
        }
    tokens = {
        k: sorted({len(sample[f"{k}_ids"]) for sample in trainer.train_dataset})
        for k in ("prompt", "chosen", "rejected")
    }
    return trainer, tokens


def trl_row(processor, pair: PreferencePair, prompt: int | None) -> dict:
    """A pair as TRL's dataset holds it: our rendered prompt and completions (and the image as the model sees
    it); without an image, no BOS that TRL's tokenizer call would add again."""
    image = pair.product.image
    text, chosen = split_prompt_answer(processor, pair.question, pair.chosen, image=image is not None)
    _, rejected = split_prompt_answer(processor, pair.question, pair.rejected, image=image is not None)
    row = {"prompt": text, "chosen": chosen, "rejected": rejected}
    if image is not None:
        return {"images": [model_image(image)], **row}
    tok = processor.tokenizer
    if len(tok(text)["input_ids"]) != prompt and text.startswith(tok.bos_token):
        row["prompt"] = text[len(tok.bos_token) :]
    return row


def text_pairs(processor, run: dict) -> list[PreferencePair]:
    """Pairs of ``prompt``-token questions and ``response``-token answers; the mismatched input another
    ``prompt``-token question (a textual mismatch with nothing in common but the chat template)."""
    words = one_token_words(processor.tokenizer)
    texts = [make_texts(processor, words, run["prompt"], run["response"], j) for j in range(run["batch"])]
    return [
        PreferencePair(
            ProductInput(f"P{j}", None, {}),
            t["question"],
            t["chosen"],
            t["rejected"],
            ProductInput(f"M{j}", None, {}),
            t["mismatched"],
            mismatch_kind="textual",
        )
        for j, t in enumerate(texts)
    ]


def llava_pairs(processor, run: dict, side: int) -> list[PreferencePair]:
    """Pairs on drawn product images (one colour each) with ``prompt``-word questions and ``response``-token
    answers; mismatches alternate, as PCPO's coin flip does: textual (the same image, another question) and
    visual (75% of the image's 32-pixel patches black, the same question)."""
    words = one_token_words(processor.tokenizer)
    rng = np.random.default_rng(0)
    pairs = []
    for j in range(run["batch"]):
        image = Image.new("RGBA", (side, side), (240, 240, 236, 255))
        ImageDraw.Draw(image).ellipse(
            [side // 4, side // 4, 3 * side // 4, 3 * side // 4], fill=(30 * j, 60, 200 - 20 * j, 255)
        )
        t = make_texts(processor, words, run["prompt"], run["response"], j)
        question = " ".join(t["question"].split()[: run["prompt"]])
        other = " ".join(t["mismatched"].split()[: run["prompt"]])
        if j % 2 == 0:
            mismatched, kind = ProductInput(f"P{j}", image, {}), "textual"
        else:
            mismatched, kind = ProductInput(f"P{j}", mask_patches(image, rng), {}), "visual"
            other = question
        pairs.append(
            PreferencePair(
                ProductInput(f"P{j}", image, {}), question, t["chosen"], t["rejected"], mismatched, other, mismatch_kind=kind
            )
        )  # fmt: skip
    return pairs


def build_ours(shape: dict, processor, run: dict, max_length: int, device: str, dtype):
    """Our policy (LoRA on the language model, checkpointing) and its engine, as ``caig pcpo`` builds them."""
    model = build_model(shape, processor, dtype, device)
    model.set_attn_implementation("sdpa")
    config = PCPOConfig(
        method="pcpo",
        lora_r=run["lora_r"],
        lora_alpha=run["lora_alpha"],
        lora_dropout=0.0,
        batch_size=run["batch"],
        max_length=max_length,
        gradient_checkpointing=True,
        warmup_ratio=0.0,
    )
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy = lora_wrap(model, config)
    engine = start_engine(policy, config, None)
    # One process holds both trainers, so Accelerate's state is TRL's (bf16): it would wrap our forward in
    # its autocast too. Ours runs as `caig pcpo` runs it, with its own autocast only (caig.pcpo.logprobs).
    if hasattr(policy, "_original_forward"):
        policy.forward = policy._original_forward
    return engine, config


@contextlib.contextmanager
def variant(name: str):
    """Our step as it was before a lever: ``unshared``, ``plain`` (both levers off), ``fp32-lora``."""
    if name == "fp32-lora":
        saved = logprobs.mixed_precision
        logprobs.mixed_precision = lambda model: contextlib.nullcontext()
        try:
            yield "fast"
        finally:
            logprobs.mixed_precision = saved
    else:
        yield {"fast": "fast", "unshared": "unshared", "plain": "plain"}[name]


def time_ours(engine, processor, pairs, config, steps: int, mode: str) -> list[float]:
    scheduler = engine.new_round(steps, 0.0)
    times = []
    for _ in range(steps):
        _sync()
        start = time.perf_counter()
        _step(engine, scheduler, processor, pairs, [1.0] * len(pairs), len(pairs), config, mode=mode)
        _sync()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for trainer_vs_trl[_llava].json")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, same code path")
    parser.add_argument(
        "--shape", choices=["text", "llava"], default="text", help="Llama-7B text or LLaVA-7B"
    )
    parser.add_argument("--batch", type=int, help="pairs per step")
    parser.add_argument("--rounds", type=int, help="alternation rounds, the first a warm-up")
    parser.add_argument("--steps", type=int, help="steps of each method per round")
    parser.add_argument("--no-ablations", action="store_true", help="TRL, our DPO and PCPO only")
    args = parser.parse_args()
    smoke, llava = args.cpu_smoke, args.shape == "llava"
    if smoke and args.out.resolve() == RESULTS.resolve():
        raise SystemExit("the CPU smoke writes elsewhere: --out DIR outside benchmarks/results")
    device = "cpu" if smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --cpu-smoke on a CPU machine")
    dtype = torch.float32 if smoke else torch.bfloat16
    size = "cpu-smoke" if smoke else "7b"
    shape = SHAPES[size]
    if not llava:  # text-only prompts: the vision tower never runs, a tiny one stands in
        tiny = SHAPES["cpu-smoke"]
        shape = {**shape, **{k: tiny[k] for k in ("vision", "image", "patch", "pinpoints")}}
    run = {**RUNS[(args.shape, size)]}
    run.update({k: v for k in ("batch", "rounds", "steps") if (v := getattr(args, k))})
    started = time.perf_counter()
    torch.manual_seed(0)

    tokenizer = train_tokenizer(static_corpus(), shape["text"]["vocab_size"])
    processor = make_processor(tokenizer, shape["image"], shape["patch"], shape["pinpoints"])
    side = 2 * shape["image"] if smoke else 512
    pairs = llava_pairs(processor, run, side) if llava else text_pairs(processor, run)
    max_length = max(len(e["input_ids"]) for e in step_sequences(processor, pairs, "pcpo", 10**6))
    trl_rows = [trl_row(processor, p, run["prompt"]) for p in pairs]

    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = _allocated()
        trl_timer = StepTimer()
        trainer, trl_tokens = build_trl(shape, processor, run, trl_rows, llava, device, dtype, tmp, trl_timer)
        trainer.train()  # a first step: the optimizer's state exists from here on
        memory["trl"] = _allocated() - base
        trl_timer.times.clear()

        base = _allocated()
        engine, config = build_ours(shape, processor, run, max_length, device, dtype)
        configs = {"pcpo": config, "dpo": replace(config, method="dpo")}
        time_ours(engine, processor, pairs, configs["dpo"], 1, "fast")
        memory["ours"] = _allocated() - base

        methods = ["trl_dpo", "ours_dpo", "ours_pcpo"]
        if not args.no_ablations:
            methods += ["ours_dpo_unshared", "ours_dpo_plain", "ours_dpo_fp32-lora"]
        times: dict[str, list[float]] = {m: [] for m in methods}
        peaks: dict[str, int] = {m: 0 for m in methods}
        for r in range(run["rounds"]):
            for m in methods:
                if device == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                before = _allocated()
                if m == "trl_dpo":
                    trl_timer.times.clear()
                    trainer.train()
                    got = list(trl_timer.times)
                else:
                    _, method, *rest = m.split("_")
                    with variant(rest[0] if rest else "fast") as mode:
                        got = time_ours(engine, processor, pairs, configs[method], run["steps"], mode)
                if device == "cuda":
                    peaks[m] = max(peaks[m], torch.cuda.max_memory_allocated() - before)
                if r:  # the first round warms up
                    times[m] += got
                print(
                    json.dumps({"round": r, "method": m, "seconds": [round(t, 4) for t in got]}), flush=True
                )

    text_config = LlamaConfig(**shape["text"])
    results = {}
    for m in methods:
        seconds = sum(times[m]) / len(times[m])
        examples = step_sequences(processor, pairs, "dpo" if m == "trl_dpo" else m.split("_")[1], max_length)
        shared = m in ("ours_dpo", "ours_pcpo", "ours_dpo_fp32-lora")
        rows = our_rows(processor, examples, shared)
        answers = sum(int((e["labels"] != IGNORE_INDEX).sum()) for e in examples)
        flops = step_flops(forward_flops(text_config, rows, answers))
        owner = "trl" if m == "trl_dpo" else "ours"
        results[m] = {
            "seconds_per_step": round(seconds, 4),
            "step_seconds": [round(t, 4) for t in times[m]],
            "samples_per_s": round(run["batch"] / seconds, 3),
            "tokens_run_per_step": sum(t for t, _ in rows),
            "tokens_unpacked_per_step": sum(len(e["input_ids"]) for e in examples),
            "model_tflops_per_s": round(flops["model"] / seconds / 1e12, 2),
            "hardware_tflops_per_s": round(flops["hardware"] / seconds / 1e12, 2),
            "peak_memory_gb": round((memory[owner] + peaks[m]) / 2**30, 2) if device == "cuda" else None,
            "step_memory_gb": round(peaks[m] / 2**30, 2) if device == "cuda" else None,
        }
    trl = results["trl_dpo"]["samples_per_s"]
    device_name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    peak = peak_bf16_tflops(device_name)
    for r in results.values():
        r["model_flops_utilization"] = round(r["model_tflops_per_s"] / peak, 3) if peak else None
    ours = step_sequences(processor, pairs, "pcpo", max_length)
    prompt_lengths = sorted({int((e["labels"] != IGNORE_INDEX).nonzero()[0]) for e in ours})
    speedup = {m: round(r["samples_per_s"] / trl, 3) for m, r in results.items()}
    report = {
        **provenance(),
        "benchmark": "trainer_vs_trl",
        "mode": f"{args.shape} {size}",
        "device": device_name,
        "torch": torch.__version__,
        "trl": __import__("trl").__version__,
        "transformers": __import__("transformers").__version__,
        "shape": {"text": shape["text"], "vision": shape["vision"] if llava else None, "batch": run["batch"]},
        "lora": {"r": run["lora_r"], "alpha": run["lora_alpha"], "targets": list(LLM_LINEAR_MODULES)},
        "dtype": str(dtype),
        "gradient_checkpointing": "all layers, non-reentrant",
        "attention": "sdpa",
        "tokens_per_pair": {
            "ours": {"prompt": prompt_lengths, "response": run["response"]},
            "trl": trl_tokens,
        },
        "mismatches": sorted({p.mismatch_kind for p in pairs}),
        "rounds": run["rounds"],
        "steps_per_round": run["steps"],
        "flops_convention": "language model only: reference forward + policy forward + 2x forward backward; "
        "LM head on answer tokens; attention counts attended query-key pairs; hardware adds one forward "
        "(checkpointing recompute); the vision tower is not counted",
        "peak_bf16_tflops": peak,
        "static_memory_gb": {k: round(v / 2**30, 2) for k, v in memory.items()} if device == "cuda" else None,
        "methods": results,
        "speedup_vs_trl_dpo": speedup,
        "goals": {
            "ours_dpo >= 1.5x trl_dpo": speedup["ours_dpo"] >= 1.5,
            "ours_pcpo >= 1.1x trl_dpo": speedup["ours_pcpo"] >= 1.1,
        },
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "trainer_vs_trl_llava.json" if llava else "trainer_vs_trl.json"
    (args.out / name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

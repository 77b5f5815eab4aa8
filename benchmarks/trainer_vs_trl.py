"""Our DPO and PCPO steps against TRL's DPOTrainer on one GPU, in one process: same model shape, batch, tokens.

The shape of TRL's published DPO figures: the Llama-7B text model (Vicuna-7B, LLaVA-v1.6-7B's language model),
a 640-token prompt and 64-token responses, batch 8 pairs, LoRA r128 / alpha 256 on q/k/v/o/gate/up/down,
gradient checkpointing (non-reentrant), bf16 weights with bf16 autocast, SDPA attention, AdamW; random weights
built from configs (nothing is downloaded).

- TRL: ``trl.DPOTrainer`` on a ``LlamaForCausalLM`` (``peft_config``: TRL wraps it; the reference is the
  policy with its adapters off, computed every step; TRL's fused LM head makes no (B, T, V) logits).
- ours: ``caig.pcpo.trainer._step`` through ``caig.pcpo.engine.start_engine``, on a
  ``LlavaNextForConditionalGeneration`` whose language model has the same shape; prompts are text only, so
  its vision tower never runs (a tiny one stands in). DPO: chosen + rejected; PCPO: also the chosen under a
  mismatched prompt (another 640-token question). The reference is computed in the step too.
- ablations of our DPO step: ``unshared`` (each sequence its own row: no shared prompt), ``plain`` (that,
  with full logits and log_softmax: the step before the fast path) and ``fp32-lora`` (no autocast: the float32
  LoRA adapters PEFT keeps make every adapter matmul float32, as ``caig pcpo`` did before).

Alternated: ``--rounds`` rounds of ``--steps`` steps of each, the first round a warm-up left out of the figures.
Per method: samples (pairs) per second, model TFLOP/s (forward FLOPs of the tokens it runs, reference once +
policy forward and backward at 2x; the checkpointing recompute only in ``hardware_tflops_per_s``), and peak
memory alone (its own weights, adapters and optimizer state plus the peak above that during its steps).

    PYTHONPATH=src python3 benchmarks/trainer_vs_trl.py --out benchmarks/results             # GPU
    PYTHONPATH=src python3 benchmarks/trainer_vs_trl.py --cpu-smoke --out /tmp/trl-smoke     # same code, tiny

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

import torch  # noqa: E402
from mllm_gpu import SHAPES, build_model  # noqa: E402
from provenance import peak_bf16_tflops, provenance  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, TrainerCallback  # noqa: E402

from caig.mllm.build import make_processor  # noqa: E402
from caig.mllm.chat import split_prompt_answer  # noqa: E402
from caig.mllm.encode import IGNORE_INDEX, encode_example  # noqa: E402
from caig.mllm.pretrain import lora_wrap  # noqa: E402
from caig.mllm.tokenizer import static_corpus, train_tokenizer  # noqa: E402
from caig.pcpo import logprobs  # noqa: E402
from caig.pcpo.config import LLM_LINEAR_MODULES, PCPOConfig  # noqa: E402
from caig.pcpo.engine import start_engine  # noqa: E402
from caig.pcpo.mismatch import ProductInput  # noqa: E402
from caig.pcpo.trainer import PreferencePair, _columns, _step  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = {
    "7b": dict(prompt=640, response=64, batch=8, lora_r=128, lora_alpha=256, rounds=4, steps=2),
    "cpu-smoke": dict(prompt=40, response=8, batch=2, lora_r=8, lora_alpha=16, rounds=2, steps=1),
}


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


def build_trl(shape: dict, tokenizer, run: dict, texts: list[dict], device: str, dtype, out: Path, timer):
    """TRL's DPOTrainer on a LlamaForCausalLM of the text shape; its dataset holds our pairs' texts,
    rendered, in the same order (each of its steps trains on the batch ours trains on)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    config = LlamaConfig(
        **shape["text"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    config._attn_implementation = "sdpa"
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    rows = [texts[i % len(texts)] for i in range(run["batch"] * run["steps"])]
    data = Dataset.from_dict({k: [t[f"trl_{k}"] for t in rows] for k in ("prompt", "chosen", "rejected")})
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
        data_seed=0,
        seed=0,
    )
    lora = LoraConfig(
        r=run["lora_r"],
        lora_alpha=run["lora_alpha"],
        lora_dropout=0.0,
        target_modules=list(LLM_LINEAR_MODULES),
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[timer],
    )
    tokens = {
        k: sorted({len(sample[k]) for sample in trainer.train_dataset})
        for k in ("prompt_ids", "chosen_ids", "rejected_ids")
    }
    return trainer, tokens


def trl_texts(processor, texts: dict, prompt: int, response: int) -> dict[str, str]:
    """Our rendered prompt and completions for TRL, without a BOS TRL's tokenizer call would add again."""
    tok = processor.tokenizer
    prompt_text, chosen = split_prompt_answer(processor, texts["question"], texts["chosen"], image=False)
    _, rejected = split_prompt_answer(processor, texts["question"], texts["rejected"], image=False)
    if len(tok(prompt_text)["input_ids"]) != prompt and prompt_text.startswith(tok.bos_token):
        prompt_text = prompt_text[len(tok.bos_token) :]
    return {"trl_prompt": prompt_text, "trl_chosen": chosen, "trl_rejected": rejected}


def build_ours(shape: dict, processor, run: dict, device: str, dtype):
    """Our policy (LoRA on the language model, checkpointing) and its engine, as ``caig pcpo`` builds them."""
    text_only = {**shape, "vision": SHAPES["cpu-smoke"]["vision"], "image": 28, "patch": 14}
    text_only["pinpoints"] = SHAPES["cpu-smoke"]["pinpoints"]
    model = build_model(text_only, processor, dtype, device)
    model.set_attn_implementation("sdpa")
    config = PCPOConfig(
        method="pcpo",
        lora_r=run["lora_r"],
        lora_alpha=run["lora_alpha"],
        lora_dropout=0.0,
        batch_size=run["batch"],
        max_length=run["prompt"] + run["response"],
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
    parser.add_argument("--out", type=Path, required=True, help="directory for trainer_vs_trl.json")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU, same code path")
    parser.add_argument("--rounds", type=int, help="alternation rounds, the first a warm-up")
    parser.add_argument("--steps", type=int, help="steps of each method per round")
    parser.add_argument("--no-ablations", action="store_true", help="TRL, our DPO and PCPO only")
    args = parser.parse_args()
    smoke = args.cpu_smoke
    if smoke and args.out.resolve() == RESULTS.resolve():
        raise SystemExit("the CPU smoke writes elsewhere: --out DIR outside benchmarks/results")
    device = "cpu" if smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device; run with --cpu-smoke on a CPU machine")
    dtype = torch.float32 if smoke else torch.bfloat16
    shape = SHAPES["cpu-smoke" if smoke else "7b"]
    run = {**RUNS["cpu-smoke" if smoke else "7b"]}
    run.update({k: v for k, v in (("rounds", args.rounds), ("steps", args.steps)) if v})
    started = time.perf_counter()
    torch.manual_seed(0)

    tokenizer = train_tokenizer(static_corpus(), shape["text"]["vocab_size"])
    processor = make_processor(tokenizer, 28, 14, SHAPES["cpu-smoke"]["pinpoints"])
    words = one_token_words(tokenizer)
    texts = [make_texts(processor, words, run["prompt"], run["response"], j) for j in range(run["batch"])]
    for t in texts:
        t.update(trl_texts(processor, t, run["prompt"], run["response"]))

    memory: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = _allocated()
        trl_timer = StepTimer()
        trainer, trl_tokens = build_trl(shape, tokenizer, run, texts, device, dtype, Path(tmp), trl_timer)
        trainer.train()  # a first step: the optimizer's state exists from here on
        memory["trl"] = _allocated() - base
        trl_timer.times.clear()

        base = _allocated()
        engine, config = build_ours(shape, processor, run, device, dtype)
        pairs = [
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
    pair_tokens = run["prompt"] + run["response"]
    results = {}
    for m in methods:
        seconds = sum(times[m]) / len(times[m])
        if m == "trl_dpo":
            rows = causal_rows([pair_tokens] * 2 * run["batch"])
            answers, unpacked = 2 * run["batch"] * run["response"], 2 * run["batch"] * pair_tokens
        else:
            examples = step_sequences(processor, pairs, m.split("_")[1], config.max_length)
            rows = our_rows(processor, examples, shared=not m.endswith(("unshared", "plain")))
            answers = sum(int((e["labels"] != IGNORE_INDEX).sum()) for e in examples)
            unpacked = sum(len(e["input_ids"]) for e in examples)
        flops = step_flops(forward_flops(text_config, rows, answers))
        owner = "trl" if m == "trl_dpo" else "ours"
        results[m] = {
            "seconds_per_step": round(seconds, 4),
            "step_seconds": [round(t, 4) for t in times[m]],
            "samples_per_s": round(run["batch"] / seconds, 3),
            "tokens_run_per_step": sum(t for t, _ in rows),
            "tokens_unpacked_per_step": unpacked,
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
    report = {
        **provenance(),
        "benchmark": "trainer_vs_trl",
        "mode": "cpu-smoke" if smoke else "7b",
        "device": device_name,
        "torch": torch.__version__,
        "trl": __import__("trl").__version__,
        "transformers": __import__("transformers").__version__,
        "shape": {"text": shape["text"], **{k: run[k] for k in ("prompt", "response", "batch")}},
        "lora": {"r": run["lora_r"], "alpha": run["lora_alpha"], "targets": list(LLM_LINEAR_MODULES)},
        "dtype": str(dtype),
        "gradient_checkpointing": "all layers, non-reentrant",
        "attention": "sdpa",
        "tokens_per_pair": {
            "ours": {"prompt": run["prompt"], "response": run["response"]},
            "trl": {
                "prompt": trl_tokens["prompt_ids"],
                "chosen": trl_tokens["chosen_ids"],
                "rejected": trl_tokens["rejected_ids"],
            },
        },  # fmt: skip
        "rounds": run["rounds"],
        "steps_per_round": run["steps"],
        "flops_convention": "reference forward + policy forward + 2x forward backward; LM head on answer tokens; "
        "attention counts attended query-key pairs; hardware adds one forward (checkpointing recompute)",
        "peak_bf16_tflops": peak,
        "static_memory_gb": {k: round(v / 2**30, 2) for k, v in memory.items()} if device == "cuda" else None,
        "methods": results,
        "speedup_vs_trl_dpo": {m: round(r["samples_per_s"] / trl, 3) for m, r in results.items()},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    report["goals"] = {
        "ours_dpo >= 1.5x trl_dpo": report["speedup_vs_trl_dpo"]["ours_dpo"] >= 1.5,
        "ours_pcpo >= 1.1x trl_dpo": report["speedup_vs_trl_dpo"]["ours_pcpo"] >= 1.1,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trainer_vs_trl.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

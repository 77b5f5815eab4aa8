"""Training beyond one process: the DeepSpeed ZeRO config a stage names, checked before training starts, and
the ``torchrun`` re-launch behind ``--gpus N``.

The engine is DeepSpeed through the HF Trainer's integration (``TrainingArguments(deepspeed=...)``); this
module only decides whether a run may start: the file a profile key names exists and parses, its ZeRO stage
is one DeepSpeed has, a stage-3 config is not combined with a setting that reads or trains the model outside
the engine (sharded parameters are empty there), and a machine has the GPUs asked for. Each refusal is one
line naming the key and the fix (``UserError``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caig.errors import UserError

CONFIGS = (
    "configs/deepspeed/zero2.json",
    "configs/deepspeed/zero3.json",
    "configs/deepspeed/zero3_offload.json",
)
ZERO_STAGES = (0, 1, 2, 3)
ALLOW_CPU = "CAIG_ALLOW_CPU_DISTRIBUTED"  # =1: --gpus N starts N CPU processes (gloo) where no GPU is


@dataclass(frozen=True)
class DeepSpeedConfig:
    """A checked DeepSpeed config: where it is, its ZeRO stage, whether it offloads to the CPU."""

    key: str  # the profile key that named it (pretrain.deepspeed_config)
    path: Path
    zero_stage: int
    offload: bool


def load_deepspeed_config(key: str, value: str) -> DeepSpeedConfig | None:
    """The DeepSpeed config that profile key ``key`` names (``value``), checked; None for ``""`` (no DeepSpeed)."""
    if not value:
        return None
    path = Path(value)
    fix = f"set {key} to one of {', '.join(CONFIGS)} or '' for none"
    if not path.is_file():
        raise UserError(f"{key}={value}: no such file; {fix}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(
            f"{key}={value}: not JSON at line {err.lineno} column {err.colno} ({err.msg}); fix the file or {fix}"
        ) from None
    if not isinstance(config, dict):
        raise UserError(f"{key}={value}: a DeepSpeed config is a JSON object, got {type(config).__name__}")
    zero = config.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise UserError(f"{key}={value}: zero_optimization must be an object")
    stage = zero.get("stage", 0)
    if stage not in ZERO_STAGES or isinstance(stage, bool):
        raise UserError(
            f"{key}={value}: zero_optimization.stage={stage!r} is not a ZeRO stage; use 0, 1, 2 or 3"
        )
    offload = any(
        isinstance(zero.get(part), dict) and zero[part].get("device", "none") not in ("none", None)
        for part in ("offload_optimizer", "offload_param")
    )
    return DeepSpeedConfig(key=key, path=path, zero_stage=int(stage), offload=offload)


def check_shardable(config: DeepSpeedConfig | None, blockers: Sequence[tuple[str, str]]) -> None:
    """Refuse ZeRO-3 with a setting that cannot shard: ``blockers`` are (setting, why) the stage has on.

    Under ZeRO-3 each process holds a slice of every parameter; code that reads or trains the model outside
    the DeepSpeed engine sees empty tensors, so the stage names what does that and the run stops here.
    """
    if config is None or config.zero_stage < 3 or not blockers:
        return
    setting, why = blockers[0]
    raise UserError(
        f"{config.key}={config.path} is ZeRO stage 3 but {setting} {why}; "
        f"turn {setting.split('=')[0]} off or use configs/deepspeed/zero2.json"
    )


def check_gpus(gpus: int, device_count: int | None = None) -> None:
    """Refuse ``--gpus N`` that this machine cannot give (more than its GPUs; CPU processes only on request)."""
    if gpus < 1:
        raise UserError(f"--gpus {gpus}: give 1 or more")
    if device_count is None:
        import torch

        device_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device_count and gpus > device_count:
        raise UserError(
            f"--gpus {gpus}: this machine has {device_count} GPU(s); ask for at most {device_count}"
        )
    if not device_count and gpus > 1 and os.environ.get(ALLOW_CPU) != "1":
        raise UserError(
            f"--gpus {gpus}: this machine has no GPU; set {ALLOW_CPU}=1 to run {gpus} CPU processes (gloo)"
        )


def launched() -> bool:
    """Whether this process was started by a launcher (torchrun, deepspeed): it must not launch again."""
    return "LOCAL_RANK" in os.environ or "TORCHELASTIC_RUN_ID" in os.environ


def is_main_process() -> bool:
    """Rank 0 of a launched job, or a plain process: the one that writes the stage's outputs."""
    return os.environ.get("RANK", "0") == "0"


def torchrun_command(gpus: int, argv: Sequence[str]) -> list[str]:
    """``python -m torch.distributed.run`` starting ``caig ARGV`` once per GPU on this machine."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
        "-m", "caig", *argv,
    ]  # fmt: skip


def relaunch(gpus: int, argv: Sequence[str], env: dict[str, Any] | None = None) -> int:
    """Run ``caig ARGV`` under torchrun with ``gpus`` processes (``check_gpus`` passed); its exit code (the
    caller exits with it)."""
    environ = {**os.environ, **(env or {})}
    return subprocess.run(torchrun_command(gpus, argv), env=environ, check=False).returncode


def gathered_model(trainer: Any, model: Any, rebuild: Any) -> Any:
    """The trained model with whole parameters, on the main process; None on the others (they write nothing).

    Without ZeRO-3 that is ``model`` itself. Under ZeRO-3 each process holds a slice of every parameter, so
    the engine gathers them (a collective: every process calls this) and ``rebuild()``, a fresh model of the
    same shape (adapters added), is loaded with them: code after training (LoRA merge, saving, evaluation)
    then reads ordinary tensors.
    """
    plugin = trainer.accelerator.state.deepspeed_plugin if trainer.is_deepspeed_enabled else None
    if plugin is None or plugin.zero_stage < 3:
        return model if is_main_process() else None
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)  # whole tensors on rank 0 only
    if not is_main_process():
        return None
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    unset_hf_deepspeed_config()  # else the rebuilt model is built sharded (zero.Init) and generate() waits
    whole = rebuild()  # for the other processes (synced_gpus), which have finished
    whole.load_state_dict(state)
    return whole


def single_process_environment() -> None:
    """The rendezvous variables of a one-process job, where no launcher (torchrun, deepspeed) set them.

    A pipeline step on one GPU runs as a plain process; DeepSpeed then looks for an MPI launcher (and fails
    without mpi4py) unless RANK, WORLD_SIZE and the master address are set. A launcher's values win.
    """
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return
    with socket.socket() as probe:  # a free loopback port for the single-member process group
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_WORLD_SIZE": "1"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(port))


def resolved_deepspeed_config(
    config: DeepSpeedConfig,
    micro_batch: int,
    world_size: int,
    max_grad_norm: float,
    dtype: Any,
    hidden_size: int,
) -> dict[str, Any]:
    """The config file with its ``"auto"`` values filled as the HF Trainer fills them, for a training loop
    of our own (PCPO) that DeepSpeed runs through Accelerate without the Trainer.

    Batch sizes: ``micro_batch`` per process, one accumulation step; clipping ``max_grad_norm``; bf16 / fp16
    on when the model's weights are; ZeRO-3's buckets from the language model's width.
    """
    import torch

    settings = json.loads(config.path.read_text())
    filled = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "train_batch_size": micro_batch * world_size,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": max_grad_norm,
    }
    for key, value in filled.items():
        if settings.get(key, "auto") == "auto":
            settings[key] = value
    for key, on in (("bf16", dtype == torch.bfloat16), ("fp16", dtype == torch.float16)):
        part = settings.setdefault(key, {})
        if part.get("enabled", "auto") == "auto":
            part["enabled"] = bool(on)
    zero = settings.setdefault("zero_optimization", {})
    sizes = {
        "reduce_bucket_size": hidden_size * hidden_size,
        "stage3_prefetch_bucket_size": int(0.9 * hidden_size * hidden_size),
        "stage3_param_persistence_threshold": 10 * hidden_size,
    }
    for key, value in sizes.items():
        if zero.get(key) == "auto":
            zero[key] = value
    return settings


def shard_map(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` split across the processes of a launched job: item i runs on process
    i mod N and every process gets all results, in item order. One process (or no process group) runs all.

    ``fn`` must not itself wait on the other processes (no collective inside): each runs a different count.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [fn(x) for x in items]
    rank, size = dist.get_rank(), dist.get_world_size()
    mine = {i: fn(items[i]) for i in range(rank, len(items), size)}
    parts: list[Any] = [None] * size
    dist.all_gather_object(parts, mine)
    merged = {i: value for part in parts for i, value in part.items()}
    return [merged[i] for i in range(len(items))]


def from_main_process(value: Any) -> Any:
    """The main process's ``value`` on every process of a launched job (``value`` itself otherwise): what
    all processes must agree on (sampled texts) even where their arithmetic could differ in the last bit."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def process_device() -> str:
    """This process's device: its GPU (``LOCAL_RANK``'s, made the current one so that ``"cuda"`` means it
    for every model the process loads), or the CPU."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local)
    return f"cuda:{local}"


def leave_process_group() -> None:
    """Destroy this process's process group if it joined one (the launcher's, Accelerate's or our own), as
    PyTorch asks at the end of a distributed program: the group's threads are stopped before the interpreter
    exits instead of being torn down with it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def join_process_group() -> None:
    """Join the launched job's process group now (NCCL on GPUs, gloo on CPUs), before the engine is built,
    so that the processes can agree on what to do (``from_main_process``); Accelerate and DeepSpeed reuse it.
    One process (no launcher) joins nothing."""
    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) < 2 or dist.is_initialized():
        return
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")

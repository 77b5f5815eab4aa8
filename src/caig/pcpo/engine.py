"""Where the PCPO policy trains: one process, several processes under DDP, or a DeepSpeed ZeRO engine
(``pcpo.deepspeed_config``), all through Accelerate.

Every round keeps the paper's recipe, a fresh AdamW and cosine schedule (the authors restarted training every
epoch), on one engine for the whole run: a round clears the optimizer's state instead of building a new
engine, which ZeRO-3 (parameters already sharded) would not allow. The policy stays the PEFT model; the
reference is that model with its adapters off, and under ZeRO-3 its forward gathers the sharded parameters
as the training forward does, so "adapters off" is the frozen base on every process.
"""

from __future__ import annotations

import math
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import get_scheduler

from caig.distributed import (
    DeepSpeedConfig,
    is_main_process,
    load_deepspeed_config,
    resolved_deepspeed_config,
    single_process_environment,
)
from caig.pcpo.config import PCPOConfig


def pcpo_deepspeed_config(config: PCPOConfig) -> DeepSpeedConfig | None:
    """``pcpo.deepspeed_config`` checked (file, JSON, ZeRO stage); None without DeepSpeed.

    Every PCPO setting shards under ZeRO-3: generation runs with the parameters gathered, the reference
    forward gathers them like the training one, and adapters are gathered before they are saved.
    """
    return load_deepspeed_config("pcpo.deepspeed_config", config.deepspeed_config)


@dataclass
class PolicyEngine:
    """The policy and what trains it: the forward that carries gradients, the optimizer, the processes."""

    accelerator: Any  # accelerate.Accelerator
    trained: Any  # the forward that trains: the DeepSpeed engine, the DDP wrapper or the policy itself
    policy: Any  # the PEFT model: generation, the reference (adapters off), saving
    optimizer: torch.optim.Optimizer  # our AdamW (under DeepSpeed, the ZeRO optimizer steps it)
    stepper: Any  # what steps it: Accelerate's wrapper of the optimizer
    deepspeed: DeepSpeedConfig | None
    max_grad_norm: float

    @property
    def rank(self) -> int:
        return self.accelerator.process_index

    @property
    def world_size(self) -> int:
        return self.accelerator.num_processes

    @property
    def sharded(self) -> bool:
        """ZeRO-3: each process holds a slice of every parameter."""
        return self.deepspeed is not None and self.deepspeed.zero_stage == 3

    def new_round(self, steps: int, warmup_ratio: float) -> Any:
        """A fresh AdamW state and a cosine schedule over this round's ``steps``; the schedule is returned."""
        self.optimizer.state.clear()  # AdamW initialises a parameter's moments when its state is empty
        return get_scheduler(
            "cosine",
            self.optimizer,
            num_warmup_steps=int(warmup_ratio * steps),
            num_training_steps=steps,
        )

    def backward_and_step(self, loss: torch.Tensor, scheduler: Any) -> None:
        """Back-propagate ``loss`` (gradients averaged over the processes), clip, step, zero the gradients.

        DeepSpeed clips (``gradient_clipping``) and steps inside its backward; elsewhere Accelerate clips the
        gradients of every process together.
        """
        self.accelerator.backward(loss)
        if self.deepspeed is None:
            params = [p for p in self.policy.parameters() if p.requires_grad]
            self.accelerator.clip_grad_norm_(params, self.max_grad_norm)
            self.stepper.step()
            self.stepper.zero_grad(set_to_none=True)
        scheduler.step()

    def whole_model(self) -> AbstractContextManager:
        """A context in which the policy's parameters are whole on every process: generation runs there.

        Under ZeRO-3 they are gathered once for the whole generate call (as TRL's
        ``unwrap_model_for_generation`` does) rather than layer by layer at every new token; LLaVA-NeXT's
        image features are computed outside any module's forward, where ZeRO-3 would gather nothing.
        """
        if not self.sharded:
            return nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.policy.parameters()))

    def save_adapter(self, folder: Path) -> None:
        """Write the LoRA adapter on the main process; under ZeRO-3 its slices are gathered first (every
        process must call this)."""
        if not self.sharded:
            if is_main_process():
                self.policy.save_pretrained(folder)
            return
        import deepspeed

        trainable = [p for p in self.policy.parameters() if p.requires_grad]
        with deepspeed.zero.GatheredParameters(trainable, modifier_rank=None):
            if is_main_process():
                self.policy.save_pretrained(folder)
        self.accelerator.wait_for_everyone()


def start_engine(policy: Any, config: PCPOConfig, deepspeed: DeepSpeedConfig | None) -> PolicyEngine:
    """Prepare ``policy`` (a PEFT model) for training on this job's processes.

    ``pcpo.batch_size`` is the global batch: each of N processes takes ``ceil(batch_size / N)`` pairs a step.
    """
    from accelerate import Accelerator, PartialState
    from accelerate.utils import DeepSpeedPlugin

    world = int(os.environ.get("WORLD_SIZE", "1"))
    cpu = not torch.cuda.is_available()
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    plugin = None
    if deepspeed is not None:
        single_process_environment()  # one process still needs a process group for DeepSpeed
        settings = resolved_deepspeed_config(
            deepspeed,
            micro_batch=math.ceil(config.batch_size / world),
            world_size=world,
            max_grad_norm=config.max_grad_norm,
            dtype=policy.dtype,
            hidden_size=_hidden_size(policy),
        )
        plugin = DeepSpeedPlugin(hf_ds_config=settings)
    # The process state first, as the HF Trainer does: Accelerator(cpu=True) would turn DeepSpeed off, and
    # without it a CPU job under DeepSpeed counts one process of one.
    PartialState(cpu=cpu)
    accelerator = Accelerator(deepspeed_plugin=plugin)
    trained, stepper = accelerator.prepare(policy, optimizer)
    return PolicyEngine(
        accelerator=accelerator,
        trained=trained,
        policy=policy,
        optimizer=optimizer,
        stepper=stepper,
        deepspeed=deepspeed,
        max_grad_norm=config.max_grad_norm,
    )


def _hidden_size(policy: Any) -> int:
    """The language model's width (DeepSpeed sizes its ZeRO-3 buckets from it)."""
    config = policy.config
    text = getattr(config, "text_config", None)
    return int(getattr(text, "hidden_size", None) or config.hidden_size)

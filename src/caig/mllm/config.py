"""Configs of the mllm stage: the model preset (``mllm``), the pre-training task mix and the SFT run
(``pretrain``). Both are sections of a profile (``configs/local.yaml``, ``configs/production.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PRESETS = ("tiny", "llava-v1.6-7b")
INSTRUCT_ATTRIBUTES = ("title", "category", "tags", "colour", "price")
# The language model's linear layers (Llama / Vicuna names); LoRA never touches the vision tower or projector.
LLM_LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class ModelSizes:
    """Widths and depths of a LLaVA-NeXT built with random weights (the tiny preset, smoke runs of the 7B)."""

    vision_hidden_size: int = 64  # CLIP vision width
    vision_layers: int = 2  # CLIP vision depth
    vision_heads: int = 2  # CLIP vision attention heads
    text_hidden_size: int = 128  # Llama width
    text_intermediate_size: int = 256  # Llama MLP width
    text_layers: int = 2  # Llama depth
    text_heads: int = 4  # Llama attention heads
    max_position_embeddings: int = 512  # longest sequence (image tokens included)
    vocab_size: int = 1200  # target size of the BPE tokenizer trained on the world's text
    seed: int = 0  # weight initialisation seed

    def __post_init__(self) -> None:
        if self.vision_hidden_size % self.vision_heads or self.text_hidden_size % self.text_heads:
            raise ValueError("hidden sizes must be multiples of their head counts")
        if self.vocab_size < 300:
            raise ValueError("vocab_size must be at least 300 (256 byte tokens + special tokens + merges)")


@dataclass
class TinyModelConfig(ModelSizes):
    """Shapes of the ``tiny`` preset: a LLaVA-NeXT that trains on 2 CPU cores in minutes."""

    image_size: int = 32  # side of the vision tower's input and of the single grid tile, pixels
    patch_size: int = 16  # ViT patch side; (image_size / patch_size)^2 patches per view (32/16: 10 tokens)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_size % self.patch_size:
            raise ValueError("image_size must be a multiple of patch_size")


@dataclass
class MLLMConfig:
    """Which multimodal LLM to build or load, and how prompts are written for it."""

    preset: Literal["tiny", "llava-v1.6-7b"] = "tiny"  # tiny: built from config; llava-v1.6-7b: loaded
    model_path: str = ""  # llava-v1.6-7b: local directory or mounted model URI (PVC path); never downloaded
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)  # shapes of the tiny preset
    system_prompt: str = ""  # system line before the first USER turn (vicuna style), written into the base
    #   model's chat template when it is built or loaded: every later stage uses the model's own
    instruct_attributes: list[str] = field(default_factory=lambda: list(INSTRUCT_ATTRIBUTES))  # f_instruct
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # weights dtype when loading
    # llava-v1.6-7b only: build its architecture and processor (CLIP-L/336 patches, the v1.6 grid, the chat
    # template and system prompt) at these sizes with random weights instead of loading model_path: the
    # production path at CPU cost, for smoke runs and tests. Never for a model meant to be used.
    random_weights: ModelSizes | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.instruct_attributes) - set(INSTRUCT_ATTRIBUTES))
        if unknown:
            raise ValueError(
                f"instruct_attributes: unknown {unknown}; choose from {list(INSTRUCT_ATTRIBUTES)}"
            )
        if not self.instruct_attributes:
            raise ValueError("instruct_attributes must name at least one attribute")
        if self.random_weights is not None and self.preset != "llava-v1.6-7b":
            raise ValueError(
                "random_weights builds the llava-v1.6-7b preset; the tiny preset is always random"
            )


@dataclass
class TaskMixConfig:
    """The pre-training task mix (paper Table 3): how many examples of each task, per product.

    The defaults follow Table 3's shares (image understanding 12.4%, multimodal content understanding
    12.4%, prompt generation 75.2%, image + caption -> prompt 50.4% of all) on a built mix, where products
    without ranked creatives get no prompt-generation examples (see ``caig.data.tasks``). On the tiny local
    model its 12% of image understanding (47% in the earlier mix) leaves the category question unlearnt
    (held-out category accuracy 0.03, was 0.93), while the match rate over 1,920 samples stays at 0.52.
    """

    category: int = 1  # image understanding: product image -> category (per product)
    colour: int = 1  # image understanding: product image -> colour
    describe_product: int = 0  # image understanding: product image -> "a red sneakers" (category + colour)
    describe_background: int = 1  # image understanding: creative image -> its background description
    title: int = 1  # image understanding: product image + attributes (no title) -> the title
    caption_background: int = 4  # multimodal: own creative's image + attributes -> its background
    none_prompt: int = 1  # prompt generation: no image, no product -> a high-CTR background
    rewrite: int = 1  # prompt generation: image + a low-CTR description -> a high-CTR one
    image_prompt: int = 3  # prompt generation: product image only (no caption) -> a high-CTR background
    caption_prompt: int = 3  # prompt generation: attributes only (no image) -> a high-CTR background
    prompt_generation: int = 17  # prompt generation: image + PM template + attributes -> high-CTR
    top_k_creatives: int = 2  # high-CTR creatives per product used as prompt-generation targets
    min_impressions: int = 200  # a creative's logged CTR counts only above this many impressions
    prior_strength: float = 200.0  # impressions of the product-mean prior that smooths logged CTR
    heldout_fraction: float = 0.2  # share of products kept out of training for evaluation
    split_seed: int = 0  # seed of the product split and of template draws

    def task_counts(self) -> dict[str, int]:
        """``task -> examples per product`` for every task of the mix (the count fields, in order)."""
        return {
            name: getattr(self, name)
            for name in (
                "category",
                "colour",
                "describe_product",
                "describe_background",
                "title",
                "caption_background",
                "none_prompt",
                "rewrite",
                "image_prompt",
                "caption_prompt",
                "prompt_generation",
            )
        }

    def __post_init__(self) -> None:
        counts = self.task_counts().values()
        if min(counts) < 0 or sum(counts) == 0:
            raise ValueError("task counts must be >= 0 and not all zero")
        if self.top_k_creatives < 1:
            raise ValueError("top_k_creatives must be at least 1")
        if self.min_impressions < 0 or self.prior_strength < 0:
            raise ValueError("min_impressions and prior_strength must be >= 0")
        if not 0 < self.heldout_fraction < 1:
            raise ValueError("heldout_fraction must be between 0 and 1")


@dataclass
class PretrainConfig:
    """E-commerce knowledge pre-training: multi-task SFT with LoRA or full fine-tuning (HF Trainer)."""

    tasks: TaskMixConfig = field(default_factory=TaskMixConfig)  # the task mix built by `caig mllm tasks`
    method: Literal["full", "lora"] = "full"  # full fine-tuning (paper) or LoRA adapters
    lora_r: int = 128  # LoRA rank
    lora_alpha: int = 256  # LoRA scaling numerator
    lora_dropout: float = 0.05  # LoRA dropout
    lora_target_modules: list[str] = field(default_factory=lambda: list(LLM_LINEAR_MODULES))  # LM layers only
    learning_rate: float = 2e-3  # peak learning rate
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"  # schedule after warm-up
    warmup_ratio: float = 0.05  # share of steps spent warming up
    weight_decay: float = 0.0  # AdamW weight decay
    epochs: float = 3.0  # passes over the task mix
    batch_size: int = 16  # examples per device per step
    grad_accum: int = 1  # gradient accumulation steps
    loss_average: Literal["example", "token"] = "example"  # average answer tokens per example, or all tokens
    max_length: int = 256  # longest training sequence in tokens (image tokens included); longer is an error
    bf16: bool = False  # bfloat16 mixed precision (GPUs)
    gradient_checkpointing: bool = False  # trade compute for memory (7B)
    deepspeed_config: str = ""  # DeepSpeed ZeRO JSON (configs/deepspeed/zero2.json, zero3.json,
    #   zero3_offload.json), checked before training (caig.distributed); "" for none
    save_steps: int = 50  # checkpoint every N optimizer steps (resume after a kill picks the last one)
    save_total_limit: int = 2  # checkpoints kept
    logging_steps: int = 5  # loss-curve resolution
    seed: int = 0  # training seed (shuffling, dropout)
    cpu_threads: int = (
        0  # torch CPU threads while training on CPU; 0 keeps torch's default (1 is fastest on a busy machine)
    )
    eval_products: int = 60  # held-out products evaluated before and after (at most the held-out set)
    eval_temperature: float = 1.0  # PM sampling temperature for the match rate (paper: 1.0)
    eval_max_new_tokens: int = 40  # longest generated description

    def __post_init__(self) -> None:
        if self.lora_r < 1 or self.lora_alpha < 1:
            raise ValueError("lora_r and lora_alpha must be positive")
        unknown = sorted(set(self.lora_target_modules) - set(LLM_LINEAR_MODULES))
        if unknown:
            raise ValueError(f"lora_target_modules: unknown {unknown}; choose from {LLM_LINEAR_MODULES}")
        if self.learning_rate <= 0 or self.epochs <= 0:
            raise ValueError("learning_rate and epochs must be positive")
        if self.batch_size < 1 or self.grad_accum < 1 or self.max_length < 16:
            raise ValueError("batch_size and grad_accum must be >= 1 and max_length >= 16")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.save_steps < 1 or self.logging_steps < 1 or self.save_total_limit < 1:
            raise ValueError("save_steps, logging_steps and save_total_limit must be >= 1")
        if self.cpu_threads < 0:
            raise ValueError("cpu_threads must be >= 0 (0: torch's default)")
        if self.eval_products < 1 or self.eval_temperature < 0 or self.eval_max_new_tokens < 1:
            raise ValueError("eval_products and eval_max_new_tokens must be >= 1, eval_temperature >= 0")

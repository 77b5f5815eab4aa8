"""Config of the reward stage: the pairwise CTR reward model (paper section 3.3, Table 1).

One dataclass, ``RewardConfig``, is the ``reward`` section of a profile: the paper's settings and the user's
(input, heads and loss, fine-tuning, pairs, the ablation). Its switches reproduce the rows of Table 1
(classification head vs. the answer as text, product caption, additional information, point loss); the
e-commerce pre-training switch is which model the RM starts from (``--model``). How a small RM is trained
beyond the paper (where the image goes, both orders, scaled CTRs, faster heads) is its own nested section,
``reward.recipe`` (``RewardRecipeConfig``), whose defaults are the paper's. The optional stages that train
the RM before the logged pairs (off in the paper) have their own top-level section, ``curriculum``
(``caig.reward.curriculum.config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from caig.data.config import PairRuleConfig

LLM_LINEAR_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
ATTRIBUTES = ("title", "category", "tags", "colour", "price")
# The curriculum's stages, once sections of ``reward``, now of ``curriculum`` (caig.reward.curriculum.config).
CURRICULUM_SECTIONS = ("perception", "ad_utility", "side_warmup", "teacher")
# The recipe's switches, once keys of ``reward``, now of ``reward.recipe`` (RewardRecipeConfig).
RECIPE_FIELDS = (
    "image_position",
    "train_both_orders",
    "swap_consistent_training",
    "ctr_scale",
    "head_lr_scale",
)


def _train_pair_rule() -> PairRuleConfig:
    # The paper's TRAIN rule (E = 50, D = 1%, no upper bound); the test pairs keep data.pairs (E = 1000, D = 5%).
    return PairRuleConfig(min_impressions=50, min_ratio_gap=0.01, max_ratio=None, max_pairs_per_product=20)


@dataclass
class RewardRecipeConfig:
    """How a small RM is trained beyond the paper; the paper's values are the defaults.

    The paper trains its 7B RM with none of them; the tiny RM of the local profile compares the two ads only
    with some (docs/stages/reward-model.md, docs/results/rm-paper-settings.md).
    """

    image_position: Literal["before_text", "after_text"] = "before_text"  # where the joined image goes in the
    #   user turn: before C_RM (paper Eq. 3) or after it, right before "ASSISTANT:", so the image is the same
    #   distance from the scored last token whatever the caption's length (a tiny model needs it; docs/stages/reward-model.md)
    train_both_orders: bool = False  # also train on each pair swapped (label and CTRs follow; paper: off)
    swap_consistent_training: bool = False  # each step scores every pair in both orders and trains the
    #   averaged logits/CTRs, the score `caig rm eval` uses: what does not depend on the order cancels
    #   (paper: off)
    ctr_scale: float = 1.0  # CTR targets are multiplied by this before the MSE of Eq. 6 (paper: raw CTR, 1.0)
    head_lr_scale: float = 1.0  # the two new heads' learning rate = learning_rate x this (1: one rate, paper)

    def __post_init__(self) -> None:
        if self.image_position not in ("before_text", "after_text"):
            raise ValueError("recipe.image_position must be 'before_text' (paper) or 'after_text'")
        if self.ctr_scale <= 0:
            raise ValueError("recipe.ctr_scale must be positive")
        if self.head_lr_scale <= 0:
            raise ValueError("recipe.head_lr_scale must be positive (1 gives the heads the backbone's rate)")
        if self.swap_consistent_training and self.train_both_orders:
            raise ValueError(
                "recipe.swap_consistent_training already trains both orders: "
                "set recipe.train_both_orders=false"
            )


@dataclass
class RewardConfig:
    """The pairwise RM: input, heads and loss (Eq. 4-7), the fine-tuning method and its schedule."""

    # Keys this section had before they moved: a profile that still sets one is told where it went.
    MOVED_KEYS: ClassVar[dict[str, str]] = {
        **{name: f"curriculum.{name}" for name in CURRICULUM_SECTIONS},
        **{name: f"reward.recipe.{name}" for name in RECIPE_FIELDS},
    }

    # Input (paper section 3.3: both images side by side, the RM template with caption and attributes).
    image_side: int = 512  # each ad image is resized to a square of this side before joining left | right
    use_caption: bool = True  # Table 1 "product caption": the caption fills the template's slot
    use_attributes: bool = True  # Table 1 "additional information": f_instruct appends category, tags, ...
    # Attributes f_instruct appends (Table 1 "additional information").
    attributes: list[str] = field(default_factory=lambda: ["category", "tags", "colour", "price"])
    template: int = -1  # Table 4 RM template index; -1 draws one per pair (seeded), as the paper's pool
    max_length: int = 512  # longest input in tokens (image tokens included); longer is an error
    # Heads and loss.
    head: Literal["classification", "text"] = "classification"  # Table 1 "classification head": text = the
    #   model answers "left"/"right" through its LM head (the base LLaVA row); classification = Linear(h, 2)
    ce_weight: float = 1.0  # lambda1 of Eq. 7
    point_weight: float = 0.5  # lambda2 of Eq. 7 (Table 1 "point loss"); 0 switches the CTR branch's loss off
    # Fine-tuning.
    method: Literal["full", "lora"] = "full"  # full fine-tuning (paper) or LoRA adapters on the LM
    lora_r: int = 128  # LoRA rank
    lora_alpha: int = 256  # LoRA scaling numerator
    lora_dropout: float = 0.05  # LoRA dropout
    lora_target_modules: list[str] = field(default_factory=lambda: list(LLM_LINEAR_MODULES))  # LM layers only
    learning_rate: float = 2e-6  # peak learning rate (paper: 2e-6, cosine)
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"  # schedule after warm-up
    warmup_ratio: float = 0.03  # share of optimizer steps spent warming up
    weight_decay: float = 0.0  # AdamW weight decay
    epochs: float = 10.0  # passes over the training pairs (paper: 10)
    batch_size: int = 8  # pairs per device per step
    grad_accum: int = 1  # gradient accumulation steps
    bf16: bool = False  # bfloat16 mixed precision (GPUs)
    gradient_checkpointing: bool = False  # trade compute for memory (7B)
    logging_steps: int = 10  # loss-curve resolution
    seed: int = 0  # training seed (template draws, shuffling, head initialisation)
    eval_batch_size: int = 32  # pairs per forward pass when scoring
    # a stage's examples are encoded once, up front, when they take at most this many GB encoded (the tiny
    # model's many epochs); above it each batch is encoded as it is drawn (large images, large logs)
    encode_up_front_gb: float = 4.0
    # DataLoader workers that encode the batches drawn that way (0: in the training process)
    encode_workers: int = 0
    cpu_threads: int = 1  # torch threads on CPU (tiny ops: 1 is fastest on shared cores); 0: default
    deepspeed_config: str = ""  # DeepSpeed ZeRO JSON for the Trainer (configs/deepspeed/zero3.json for full
    #   fine-tuning of the 7B; zero3_offload.json on one GPU), checked before training; "" for none. Under ZeRO-3
    #   only the logged-pairs stage trains: the curriculum's stages are refused (caig.distributed)
    # Pairs.
    train_pairs: PairRuleConfig = field(default_factory=_train_pair_rule)  # looser rule for TRAINING pairs
    ablation_seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds per Table 1 row
    ablation_rows: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4, 5])  # Table 1 rows to train
    #   (0 = the base model answering as text ... 5 = the full RM); [0, 5] compares the two ends only
    ablation_jobs: int = 1  # seeds trained side by side (processes, each a seed's rows in order, sharing its
    #   stages); the tiny RM is bound by per-step overhead, so cores, not a GPU, speed the table up
    # Beyond the paper.
    recipe: RewardRecipeConfig = field(default_factory=RewardRecipeConfig)  # how a small RM is trained beyond
    #   the paper (image position, both orders, CTR scale, head rate); the paper's values are the defaults

    def __post_init__(self) -> None:
        if self.image_side < 8:
            raise ValueError("image_side must be at least 8 pixels")
        unknown = sorted(set(self.attributes) - set(ATTRIBUTES))
        if unknown:
            raise ValueError(f"attributes: unknown {unknown}; choose from {list(ATTRIBUTES)}")
        if not -1 <= self.template < 13:
            raise ValueError("template must be -1 (draw one per pair) or an RM template index 0..12")
        if self.max_length < 16:
            raise ValueError("max_length must be at least 16")
        if self.ce_weight < 0 or self.point_weight < 0 or self.ce_weight + self.point_weight == 0:
            raise ValueError("ce_weight and point_weight must be >= 0 and not both 0")
        if self.head == "text" and self.point_weight > 0:
            raise ValueError("head 'text' has no CTR branch: set point_weight=0 (Table 1 rows without it)")
        if self.encode_up_front_gb < 0 or self.encode_workers < 0:
            raise ValueError("encode_up_front_gb and encode_workers must be >= 0")
        if self.lora_r < 1 or self.lora_alpha < 1 or not 0 <= self.lora_dropout < 1:
            raise ValueError("lora_r and lora_alpha must be positive and lora_dropout in [0, 1)")
        bad = sorted(set(self.lora_target_modules) - set(LLM_LINEAR_MODULES))
        if bad:
            raise ValueError(f"lora_target_modules: unknown {bad}; choose from {LLM_LINEAR_MODULES}")
        if self.learning_rate <= 0 or self.epochs <= 0:
            raise ValueError("learning_rate and epochs must be positive")
        if self.recipe.swap_consistent_training and self.head == "text":
            raise ValueError(
                "recipe.swap_consistent_training averages the classification head's logits: set "
                "head=classification or recipe.swap_consistent_training=false"
            )
        if self.batch_size < 1 or self.grad_accum < 1 or self.eval_batch_size < 1 or self.logging_steps < 1:
            raise ValueError("batch_size, grad_accum, eval_batch_size and logging_steps must be >= 1")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.cpu_threads < 0:
            raise ValueError("cpu_threads must be >= 0 (0 keeps torch's default)")
        if self.ablation_jobs < 1:
            raise ValueError("ablation_jobs must be >= 1 (1: the seeds one after another)")
        if not self.ablation_seeds:
            raise ValueError("ablation_seeds must name at least one seed")
        if not self.ablation_rows or sorted(set(self.ablation_rows)) != list(self.ablation_rows):
            raise ValueError("ablation_rows must list Table 1 row indices in increasing order, e.g. [0, 5]")
        if not set(self.ablation_rows) <= set(range(6)):
            raise ValueError("ablation_rows: Table 1 has rows 0 (base model, answer as text) to 5 (full RM)")


def upgrade_saved_reward(saved: dict[str, Any]) -> dict[str, Any]:
    """A ``reward`` section as an RM's ``rm.json`` saved it, in today's shape: the recipe's switches that RMs
    saved before ``reward.recipe`` existed kept at the top move below ``recipe`` (they shape scoring too:
    ``image_position``); the curriculum's stages (``CURRICULUM_SECTIONS``) are dropped (they shaped the
    training only; ``caig.reward.curriculum.stages.trained_curriculum`` reads them)."""
    kept = {k: v for k, v in saved.items() if k not in CURRICULUM_SECTIONS and k not in RECIPE_FIELDS}
    old_recipe = {k: v for k, v in saved.items() if k in RECIPE_FIELDS}
    if old_recipe:
        kept["recipe"] = {**old_recipe, **(saved.get("recipe") or {})}
    return kept

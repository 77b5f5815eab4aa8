"""The RM network: a LLaVA-NeXT backbone and two heads on the hidden state of the last REAL token.

Paper Eq. 3-4 and Figure 2 (b): ``H = LLM([f_vision([I1; I2]); f_text(C_RM)])``; ``h`` is the hidden state of
the final token; ``p = softmax(FC_cls(h))`` (logit 0: left is better, logit 1: right) and the CTR branch
``FC_ctr(h) -> [ctr_left, ctr_right]``, both ``Linear(hidden, 2, bias=False)``.

"Final token" means the last non-pad token of each row (the official code takes index -1, which is a pad
token when a batch is right-padded). Position ids follow the attention mask, so a row's output does not
depend on how much padding it got or on which side.

With ``head="text"`` (Table 1's rows before "classification head") the model answers as text instead: the
two logits are the LM head's logits of the answer tokens "left" and "right" at the same position, and the
training loss is the LM loss on the answer's first token.

``build_reward_model`` wraps a loaded LLaVA-NeXT as an RM exactly as training does (LoRA on the language
model when ``method: lora``, gradient checkpointing, the two heads seeded by ``reward.seed``), with torch,
transformers and peft only: the GPU benchmarks build their RM with it.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from caig.reward.config import RewardConfig
from caig.reward.inputs import answer_token_ids


def last_real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-pad token of each row, for right or left padding: (B, T) -> (B,)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask.long() * positions).argmax(dim=1)  # (B,)


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids counting real tokens only (0 at each row's first real token): (B, T)."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)


class RewardModel(nn.Module):
    """LLaVA-NeXT backbone + classification and CTR heads (or the LM head's answer logits for ``text``)."""

    def __init__(self, llava: Any, head: str = "classification", answer_ids: tuple[int, int] | None = None):
        super().__init__()
        if head not in ("classification", "text"):
            raise ValueError("head must be 'classification' or 'text'")
        if head == "text" and answer_ids is None:
            raise ValueError("head 'text' needs the token ids of the answers 'left' and 'right'")
        self.llava = llava  # LlavaNextForConditionalGeneration (LoRA layers, if any, injected in place)
        self.head = head
        hidden = llava.config.text_config.hidden_size
        self.cls_head = nn.Linear(hidden, 2, bias=False)  # Eq. 4: FC_cls
        self.ctr_head = nn.Linear(hidden, 2, bias=False)  # Eq. 6: FC_ctr
        self.register_buffer("answer_ids", torch.tensor(answer_ids or (0, 0)), persistent=False)

    @property
    def config(self) -> Any:
        return self.llava.config

    def last_hidden(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        image_sizes: torch.Tensor,
    ) -> torch.Tensor:
        """Hidden state of each row's last real token: (B, hidden)."""
        out = self.llava.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            pixel_values=pixel_values,
            image_sizes=image_sizes,
            position_ids=positions_from_mask(attention_mask),
            use_cache=False,
        )
        hidden = out.last_hidden_state  # (B, T, hidden)
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_real_index(attention_mask)]  # (B, hidden)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        image_sizes: torch.Tensor,
        **_: Any,
    ) -> dict[str, torch.Tensor]:
        """``logits`` (B, 2) left/right, ``ctr`` (B, 2) and, for the text head, ``lm_logits`` (B, vocab)."""
        h = self.last_hidden(input_ids, attention_mask, pixel_values, image_sizes)
        h = h.to(self.cls_head.weight.dtype)
        if self.head == "text":
            lm_logits = self.llava.lm_head(h.to(self.llava.lm_head.weight.dtype)).float()  # (B, vocab)
            return {
                "logits": lm_logits[:, self.answer_ids],
                "ctr": self.ctr_head(h).float(),
                "lm_logits": lm_logits,
            }
        return {"logits": self.cls_head(h).float(), "ctr": self.ctr_head(h).float()}


def lora_target_regex(modules: list[str]) -> str:
    """LoRA targets: the named linear layers of the language model only (not CLIP's q/k/v, not the projector)."""
    return rf".*language_model.*\.({'|'.join(modules)})$"


def use_cpu_threads(config: RewardConfig) -> None:
    """On CPU, set torch's thread count from the config (more threads than cores slow tiny ops down)."""
    if config.cpu_threads and not torch.cuda.is_available():
        torch.set_num_threads(config.cpu_threads)


def training_device() -> str:
    """The GPU where there is one (as the HF Trainer chooses), so that every stage trains there."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_reward_model(llava: Any, processor: Any, config: RewardConfig) -> RewardModel:
    """Wrap a LLaVA-NeXT as an RM: heads seeded by ``config.seed``, LoRA injected when ``method == lora``."""
    if config.method == "lora":
        from peft import LoraConfig, inject_adapter_in_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=lora_target_regex(config.lora_target_modules),
        )
        llava = inject_adapter_in_model(lora, llava)
        for name, param in llava.named_parameters():
            param.requires_grad = "lora_" in name
    if config.gradient_checkpointing:
        llava.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    answer_ids = answer_token_ids(processor) if config.head == "text" else None
    torch.manual_seed(config.seed)
    model = RewardModel(llava, config.head, answer_ids)
    return model.to(next(llava.parameters()).device)

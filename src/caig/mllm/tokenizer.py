"""The tiny preset's tokenizer: a byte-level BPE trained offline on the world's own text.

The corpus is everything the model will read or write: category names, colours, tags, every background term
of the vocabulary, the Table 4 templates and task questions, f_instruct's attribute labels, and, when a world
is given, its titles and creative descriptions. Byte-level BPE can still spell any other text. Special tokens
(``<s>``, ``</s>``, ``<pad>``, ``<image>``) start with ``<``, which no corpus word does, so none of them is a
prefix of an ordinary word (a tokenizer whose role markers prefix words breaks generation).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from caig.mllm.instruct import ATTRIBUTE_LABELS
from caig.mllm.templates import PM_TEMPLATES, RM_TEMPLATES, TASK_QUESTIONS
from caig.world.vocabulary import CATEGORIES, COLOURS, TERMS

log = logging.getLogger("caig.mllm")

BOS, EOS, PAD, IMAGE = "<s>", "</s>", "<pad>", "<image>"
SPECIAL_TOKENS = [PAD, BOS, EOS, IMAGE]
CHAT_WORDS = ("USER:", "ASSISTANT:", "left", "right", "a", "an", "the", "$0123456789.,'")


def static_corpus() -> list[str]:
    """Texts every world shares: vocabulary, templates, questions, labels, chat role words."""
    texts = [c.name for c in CATEGORIES] + [" ".join(c.tags) for c in CATEGORIES]
    texts += list(COLOURS) + [t.text for t in TERMS]
    texts += [t.replace("{}", "") for t in (*PM_TEMPLATES, *RM_TEMPLATES)] + list(TASK_QUESTIONS)
    texts += [f"{label}: ''" for label in ATTRIBUTE_LABELS.values()] + list(CHAT_WORDS)
    return texts


def world_corpus(world_dir: str | Path) -> list[str]:
    """A data directory's own text: catalog titles (and tags, where the catalog has them) and creative
    descriptions (no oracle involved)."""
    import pandas as pd

    world_dir = Path(world_dir)
    catalog = pd.read_parquet(world_dir / "catalog.parquet")  # imported real data may have the title only
    creatives = pd.read_parquet(world_dir / "creatives.parquet", columns=["description"])
    texts = catalog["title"].tolist()
    if "tags" in catalog.columns:
        texts += [" ".join(t) for t in catalog["tags"]]
    return texts + creatives["description"].tolist()


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``corpus`` and wrap it as a transformers fast tokenizer."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = list(corpus)
    # Words are seen both at the start of a text and after a space, as in prompts and answers.
    tokenizer.train_from_iterator(texts + [f" {t}" for t in texts], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        extra_special_tokens={"image_token": IMAGE},
    )
    fast.padding_side = "right"
    log.info("tokenizer: %d tokens trained on %d texts", len(fast), len(texts))
    return fast


def check_special_tokens(tokenizer: PreTrainedTokenizerFast, words: Iterable[str]) -> None:
    """Raise if a special token is a prefix of an ordinary corpus word (it would swallow the word's start)."""
    for special in tokenizer.all_special_tokens:
        for word in words:
            if word != special and word.startswith(special):
                raise ValueError(f"special token {special!r} is a prefix of the word {word!r}")

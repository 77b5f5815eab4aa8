"""The task mix as a torch Dataset: examples encoded lazily (images read once and cached)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

from caig.errors import UserError
from caig.mllm.chat import render
from caig.mllm.encode import encode_example, model_image
from caig.mllm.token_budget import image_tokens, text_tokens


class TaskDataset(Dataset):
    """Rows of ``tasks.parquet`` (image_path relative to ``world_dir``, "" for none) encoded for training."""

    def __init__(self, examples: pd.DataFrame, world_dir: str | Path, processor: Any, max_length: int):
        self.examples = examples.reset_index(drop=True)
        self.world_dir = Path(world_dir)
        self.processor, self.max_length = processor, max_length
        missing = [
            p for p in self.examples["image_path"].unique() if p and not (self.world_dir / p).is_file()
        ]
        if missing:
            raise UserError(
                f"{len(missing)} task image(s) missing under {self.world_dir}, e.g. {missing[0]}; "
                "pass the task mix's world with --world"
            )
        self._image = lru_cache(maxsize=4096)(self._load_image)

    def _load_image(self, path: str) -> Image.Image:
        with Image.open(self.world_dir / path) as image:
            return model_image(image)

    def longest(self) -> int:
        """The longest example in tokens, image tokens included, counted without encoding any pixels (image
        sizes are read from the files' headers), so that an impossible ``max_length`` fails before training."""
        rows = self.examples
        texts = [
            render(self.processor, q, a, bool(p))
            for q, a, p in zip(rows["question"], rows["answer"], rows["image_path"])
        ]
        extra = {p: self._image_tokens(p) - 1 for p in rows["image_path"].unique() if p}
        lengths = [
            n + extra.get(p, 0) for n, p in zip(text_tokens(self.processor, texts), rows["image_path"])
        ]
        return max(lengths, default=0)

    def _image_tokens(self, path: str) -> int:
        with Image.open(self.world_dir / path) as image:
            return image_tokens(self.processor, *image.size)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.examples.iloc[index]
        image = self._image(row["image_path"]) if row["image_path"] else None
        return encode_example(self.processor, image, row["question"], row["answer"], self.max_length)

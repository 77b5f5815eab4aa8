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
from caig.mllm.encode import encode_example, model_image


class TaskDataset(Dataset):
    """Rows of ``tasks.parquet`` (image_path relative to ``world_dir``, "" for none) encoded for training."""

    def __init__(
        self, examples: pd.DataFrame, world_dir: str | Path, processor: Any, max_length: int, system: str = ""
    ):
        self.examples = examples.reset_index(drop=True)
        self.world_dir = Path(world_dir)
        self.processor, self.max_length, self.system = processor, max_length, system
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

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        row = self.examples.iloc[index]
        image = self._image(row["image_path"]) if row["image_path"] else None
        return encode_example(
            self.processor, image, row["question"], row["answer"], self.max_length, self.system
        )

"""Where a served model runs: the device and weights dtype that ``serving.device`` / ``serving.dtype`` name."""

from __future__ import annotations

import torch

from caig.serving.config import ServingConfig


def device_and_dtype(config: ServingConfig) -> tuple[str, str]:
    """(device, dtype name): ``auto`` picks cuda and bfloat16 when a GPU is present, else cpu and float32."""
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = config.dtype
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, dtype

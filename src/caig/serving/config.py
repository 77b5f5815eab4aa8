"""Config of the PM, RM and background-generator servers (``caig serve pm|rm|render``).

Models come from a run directory (``--run``, e.g. ``runs/demo`` or the ``/mnt/models`` KServe mounts) unless
``pm_model`` / ``rm_model`` name one; request limits keep one request from holding a GPU for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from caig.mllm.templates import PM_TEMPLATES

DType = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass
class ServingConfig:
    """How ``caig serve pm|rm|render`` loads its model and which requests it accepts."""

    host: str = "127.0.0.1"  # address to bind; the ServingRuntimes pass --host 0.0.0.0
    pm_model: str = ""  # PM directory or file:// URI; empty: the run's pre-trained PM
    pm_adapter: Literal["latest", "none"] = "latest"  # merge the run's last PCPO round LoRA adapter, if any
    rm_model: str = ""  # RM directory (rm.json, heads) or file:// URI; empty: the run's RM
    device: str = "auto"  # auto (cuda if present, else cpu), cpu, cuda, cuda:N
    dtype: DType = "auto"  # weights dtype: auto = bfloat16 on cuda, float32 on cpu
    descriptions: int = 2  # descriptions per product when a request names no n
    max_descriptions: int = 8  # largest n a request may ask for
    temperature: float = 0.7  # sampling temperature when a request names none (0 = greedy)
    max_new_tokens: int = 40  # tokens per generated description
    pm_template: int = 0  # Table 4 PM template (index) of the served prompt
    max_candidates: int = 8  # largest K of a ranking request (K * (K - 1) RM forward passes)
    max_instances: int = 16  # instances per request
    max_image_bytes: int = 8_388_608  # largest decoded image of a request (8 MiB)
    max_image_side: int = 2048  # largest width or height of a request's image, pixels
    max_body_bytes: int = 67_108_864  # largest request body of any caig server, the selector's included
    # (64 MiB: 16 instances of an 8 MiB image, base64); a larger one is refused with 413 unread

    def __post_init__(self) -> None:
        if self.device != "auto" and self.device.split(":")[0] not in ("cpu", "cuda", "mps"):
            raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got '{self.device}'")
        if not 1 <= self.descriptions <= self.max_descriptions:
            raise ValueError("descriptions must be between 1 and max_descriptions")
        if not 0.0 <= self.temperature <= 5.0:
            raise ValueError(f"temperature must be between 0 and 5, got {self.temperature}")
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if not 0 <= self.pm_template < len(PM_TEMPLATES):
            raise ValueError(f"pm_template must be between 0 and {len(PM_TEMPLATES) - 1}")
        if self.max_candidates < 2:
            raise ValueError("max_candidates must be at least 2 (a pair)")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.max_instances < 1 or self.max_image_bytes < 1024 or self.max_image_side < 16:
            raise ValueError("max_instances >= 1, max_image_bytes >= 1024 and max_image_side >= 16 required")

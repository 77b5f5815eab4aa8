"""What every result in ``benchmarks/results/`` records about how it was made: command, commit, machine; and
the dense bf16 peak of the GPU it ran on (the denominator of a utilisation)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def provenance() -> dict[str, Any]:
    """The command line (as run), the short commit of the working tree, the machine."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "commit": commit,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }


# dense bf16 tensor-core peak (no sparsity), TFLOP/s: the first name the device's name contains
PEAK_BF16_TFLOPS = [
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
]


def peak_bf16_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name (``torch.cuda.get_device_name()``), None if unknown."""
    return next((v for k, v in PEAK_BF16_TFLOPS if k in device_name), None)

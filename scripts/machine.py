"""The machine a bench ran on, in one line: CPU model and core count (and the GPU's name on cuda)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo; elsewhere what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(device: str = "cpu") -> str:
    """``<CPU model>, <N> cores`` plus the GPU's name when ``device`` is a CUDA device."""
    text = f"{cpu_model()}, {os.cpu_count()} cores"
    if device.startswith("cuda"):
        import torch

        text += f", GPU {torch.cuda.get_device_name()}"
    return text

"""Every benchmark figure carries the machine it was measured on and the date."""

from __future__ import annotations

import datetime as dt
import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(title: str) -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"## {title}\n"
        f"machine: {os.cpu_count()} cores, {cpu_model()}, {gpu}; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); {dt.date.today().isoformat()}"
    )

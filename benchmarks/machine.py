"""The machine a CPU benchmark ran on, for its printed figures (imported by the benchmark
scripts of this folder, which run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np


def describe_machine() -> str:
    """One line: the CPU model, its cores, the load average (1 / 5 / 15 min), numpy's and
    Python's versions."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (f"{model}, {os.cpu_count()} cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
            f"(1 / 5 / 15 min); numpy {np.__version__}, Python {platform.python_version()}")

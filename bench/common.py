"""Helpers shared by the benchmarks: the project's own config, machine facts, medians."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONF = str(Path(__file__).resolve().parent.parent / "conf")


def config(*overrides: str) -> DictConfig:
    """The same composed config `python train.py <overrides>` would use (outside a Hydra run)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = os.environ.get("BENCH_OUT", "/tmp/rnnlm-bench")
    return cfg


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}, {gpu}"


def median_spread(values: list[float]) -> str:
    """'median (min-max)' with values in thousands."""
    return f"{statistics.median(values) / 1e3:.2f}k ({min(values) / 1e3:.2f}-{max(values) / 1e3:.2f})"

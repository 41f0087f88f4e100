"""Helpers shared by the benchmarks: the project's own config, a measured run's overrides, epoch 0's batches,
machine facts, and the table's rows."""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from rnnlm.precision import cpu_bf16_class, cpu_has_bf16

CONF = str(Path(__file__).resolve().parent.parent / "conf")


def config(*overrides: str) -> DictConfig:
    """The same composed config `python train.py <overrides>` would use (outside a Hydra run)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = os.environ.get("BENCH_OUT", "/tmp/rnnlm-bench")
    return cfg


# A measured run: one epoch, no validation before it, and nothing the timing or the table does not need.
QUIET_RUN = (
    "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0", "trainer.enable_checkpointing=false",
    "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false", "logger=[]", "callbacks=[]",
)  # fmt: skip


def first_epoch(cfg: DictConfig) -> tuple[np.ndarray, list[np.ndarray]]:
    """The training split's target tokens per sentence (+ <eos>) and epoch 0's batches of sentence ids."""
    datamodule = instantiate(cfg.data, tokenizer=dict(cfg.tokenizer))
    datamodule.prepare()
    return datamodule.splits["train"].lengths + 1, datamodule.sampler("train").batches(0)


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
    bf16 = cpu_bf16_class() + ("" if cpu_has_bf16() else ": bf16 training rows run in fp32")
    threads = f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return f"{cpu}, {threads}, {bf16}, torch {torch.__version__}, {gpu}"


@dataclass
class Row:
    """One line of the suite's table: a figure measured `len(values)` times, reported as median (min-max).

    `key` is stable across runs (what `python -m bench --compare` matches on); `better` says which way
    is an improvement ("higher", "lower"), None for figures that are facts rather than speeds; `goal`
    is (">=" or "<=", threshold) where the project has one.
    """

    key: str
    what: str
    values: list[float]
    unit: str
    better: str | None = None
    goal: tuple[str, float] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def goal_text(self) -> str:
        if self.goal is None:
            return ""
        op, threshold = self.goal
        met = self.median >= threshold if op == ">=" else self.median <= threshold
        return f"{op} {number(threshold)}: {'met' if met else '**missed**'}"

    def markdown(self) -> str:
        lo, hi = min(self.values), max(self.values)
        spread = f"{number(lo)}-{number(hi)}" if len(self.values) > 1 else "one run"
        what = self.what.replace("|", "\\|")  # a bar in the text would end its cell
        return f"| {self.key} | {what} | **{number(self.median)}** | {spread} | {self.unit} | {self.goal_text()} |"


TABLE_HEADER = "| key | what | median | spread (min-max) | unit | goal |\n|---|---|---|---|---|---|"


def number(v: float) -> str:
    """Three significant figures or so, thousands separated: 7,123 / 147.2 / 0.953 / 0.0012; whole numbers whole."""
    a = abs(v)
    if a >= 1000 or (v == int(v) and a >= 1):
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def ratio_row(key: str, what: str, num: Row, den: Row, goal: tuple[str, float] | None = None) -> Row:
    """num/den per round (rounds are interleaved, so a round's pair saw the same machine load)."""
    return Row(key, what, [a / b for a, b in zip(num.values, den.values, strict=True)], "x", "higher", goal)


def move_overrides(names: list[str] | None, overrides: list[str]) -> list[str] | None:
    """argparse hands `--only a b key=value` all to --only: give the `key=value` items back to overrides."""
    if names is None:
        return None
    overrides.extend(n for n in names if "=" in n)
    return [n for n in names if "=" not in n]

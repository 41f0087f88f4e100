"""The GPU acceptance run: one command that proves rnnlm's GPU paths and measures them in a short window.

    bash scripts/gpu_check.sh OUT_DIR                 # on the GPU machine: installs rnnlm offline, then this
    python -m bench.gpu_check OUT_DIR                 # the stages themselves (on the GPU if there is one)
    python -m bench.gpu_check OUT_DIR --device cpu    # every stage that can, on the CPU, through the same code

Stages run in order of value and each one's result is appended to OUT_DIR/report.md as soon as it is known,
so a run cut short still reports what it did. A stage that fails or cannot run says why in one line, and the
next one runs. Without a GPU the stages run on the CPU (so the GPU run is not the first run of this code) and
the GPU-only parts say they were skipped. Extra arguments are train.py overrides for every training stage
(the tests use them for a tiny corpus). Two files are written under OUT_DIR: report.md and pytest-gpu.txt.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

from bench import gpu_stages


class Report:
    """report.md, appended to and flushed after every line; the terminal gets the same lines."""

    def __init__(self, out_dir: Path) -> None:
        self.path: Path | None = out_dir / "report.md"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            self.path.write_text("")
        except OSError as err:
            print(f"error: OUT_DIR={out_dir} cannot be written ({err.strerror or err}): the report goes to this "
                  "terminal only; give a folder this user can write to keep it.", file=sys.stderr)  # fmt: skip
            self.path = None

    @property
    def dir(self) -> Path | None:
        """Where the stages may write their own files: None when OUT_DIR could not be written."""
        return self.path.parent if self.path is not None else None

    def write(self, text: str) -> None:
        print(text, flush=True)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())


STAGES: list[tuple[str, Callable]] = [
    ("versions", gpu_stages.versions),
    ("tests that need a GPU", gpu_stages.gpu_tests),
    ("training: each cell in fp32 and bf16-mixed, beside cuDNN's own layers", gpu_stages.training),
    ("generation and scoring: this device against the CPU", gpu_stages.generation),
    ("module.compile", gpu_stages.compiled),
    ("a 2-job gpu_pool sweep", gpu_stages.sweep),
    ("DDP with 2 processes", gpu_stages.ddp),
]


def run(out_dir: Path, device: str, steps: int | None, overrides: list[str], only: list[str] | None = None) -> int:
    """Every stage (or those whose names start with one of `only`); the number that failed."""
    report = Report(out_dir)
    ctx = gpu_stages.Context(device, steps or (300 if device == "cuda" else 12), overrides, report.dir)
    report.write("# GPU acceptance run\n")
    report.write(f"device: {device}; {ctx.steps} training steps a run; overrides: {' '.join(overrides) or 'none'}\n")
    failed, started = 0, time.perf_counter()
    for name, stage in STAGES:
        if only and not any(name.startswith(o) for o in only):
            continue
        report.write(f"## {name}\n")
        t0 = time.perf_counter()
        try:
            for line in stage(ctx):
                report.write(line)
        except Exception as err:  # noqa: BLE001  (one stage's failure is reported; the next stage runs)
            failed += 1
            last = traceback.format_exception_only(err)[-1].strip()
            report.write(f"**failed**: {last}")
        report.write(f"\n({time.perf_counter() - t0:.1f} s)\n")
    report.write(f"done in {time.perf_counter() - started:.0f} s; {failed} stage(s) failed")
    return failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    ap.add_argument("--steps", type=int, help="training steps a run (default: 300 on a GPU, 12 on the CPU)")
    ap.add_argument("--only", nargs="+", metavar="STAGE", help="the stages whose names start so")
    ap.add_argument("overrides", nargs="*", help="train.py overrides for every training stage")
    args = ap.parse_intermixed_args(argv)  # overrides may follow the options
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto.")
    failed = run(args.out_dir, device, args.steps, args.overrides, args.only)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""train(cfg): the whole training run that train.py wires to Hydra.

Build the data (learning the tokenizer), the model around that tokenizer, the Trainer with its callbacks
and loggers; fit; test the best checkpoint; write results.json and return the metrics (a sweeper
optimises one of them). The whole run happens under a StopGuard: Ctrl-C and SIGTERM end it in bounded
time, stuck or not.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, open_dict

from rnnlm.lifecycle.checkpoint_io import resolve_ckpt_path
from rnnlm.lifecycle.interrupt import TrainingInterrupted, resume_command
from rnnlm.lifecycle.loggers import finish_runs
from rnnlm.lifecycle.rank_failures import ranks_end_together
from rnnlm.lifecycle.stop_guard import StopGuard
from rnnlm.run.build import build
from rnnlm.run.results import overrides, summary_line, write_results
from rnnlm.training.callbacks import EpochSummary

log = logging.getLogger(__name__)


def _resolve_ckpt_path(cfg: DictConfig) -> None:
    """`ckpt_path=last`, or the checkpoint a SLURM requeue left in this run's folder, made a real path."""
    output_dir = cfg.paths.get("output_dir") if "paths" in cfg else None
    runs_root = Path(cfg.paths.log_dir, cfg.task_name) if "paths" in cfg else Path("outputs")
    path = resolve_ckpt_path(cfg.get("ckpt_path"), runs_root, output_dir)
    if path != cfg.get("ckpt_path"):
        log.info("resuming from %s", path)
        with open_dict(cfg):
            cfg.ckpt_path = path


def train(cfg: DictConfig) -> dict[str, float]:
    with StopGuard(cfg.get("interrupt_grace_s", 30.0)) as guard:
        try:
            return _train(cfg, guard)
        except TrainingInterrupted:
            if guard.preempted:
                guard.hand_over()  # submitit requeues the job; in the same folder it resumes from the checkpoint
            raise


def _train(cfg: DictConfig, guard: StopGuard) -> dict[str, float]:
    started = time.perf_counter()
    _resolve_ckpt_path(cfg)
    datamodule, module, trainer = build(cfg, guard)
    guard.trainer = trainer
    try:
        with ranks_end_together(trainer):
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            # Taken before testing, which loads the best checkpoint and with it that epoch's older history.
            history = next(c for c in trainer.callbacks if isinstance(c, EpochSummary)).history
            ckpt = trainer.checkpoint_callback
            best_path = ckpt.best_model_path if ckpt is not None else ""
            if ckpt is not None and ckpt.best_model_score is not None:
                metrics["val/ppl"] = float(ckpt.best_model_score)  # the best epoch's, not the last one's
                if "val/bpc" in metrics:  # and its bits per character (a character tokenizer's run)
                    metrics["val/bpc"] = math.log2(metrics["val/ppl"])
            if cfg.get("test"):
                results = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)
                metrics.update({k: float(v) for k, v in results[0].items()})
    except TrainingInterrupted as stop:
        _say_how_to_resume(stop, trainer, requeued=guard.preempted)  # set only where submitit requeues
        raise
    finally:
        finish_runs(trainer)

    if trainer.is_global_zero:
        write_results(
            Path(trainer.default_root_dir) / "results.json", cfg, list(history), metrics,
            num_params=module.num_parameters, wall_time_s=time.perf_counter() - started,
            best_checkpoint=best_path or None,
        )  # fmt: skip
        print(summary_line(metrics, best_path), flush=True)
    return metrics


def _say_how_to_resume(stop: TrainingInterrupted, trainer: L.Trainer, requeued: bool = False) -> None:
    if trainer.is_global_zero:
        then = (f"SLURM requeues this job; it resumes from {stop.checkpoint} in this folder" if requeued  # submitit
                else f"resume with:\n  {resume_command(overrides(), stop.checkpoint)}")  # fmt: skip
        print(f"stopped by {stop.signal_name} at epoch {stop.epoch}, step {stop.step}; saved {stop.checkpoint}\n{then}",
              file=sys.stderr, flush=True)  # fmt: skip


def objective(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a Hydra sweeper optimises."""
    if not name:
        return None
    if name not in metrics:
        log.warning("optimized_metric=%s was not logged; known: %s", name, ", ".join(sorted(metrics)))
        return None
    return metrics[name]

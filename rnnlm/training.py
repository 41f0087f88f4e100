"""train(cfg): the whole training run that train.py wires to Hydra.

Build the data (learning the tokenizer), the model around that tokenizer, the Trainer with its callbacks
and loggers; fit; test the best checkpoint; return the metrics (a sweeper optimises one of them).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from rnnlm.checkpoint import AtomicCheckpointIO, read_checkpoint, resolve_ckpt_path
from rnnlm.cli import user_error
from rnnlm.distributed import SpawnedLogging, check_strategy, ranks_end_together, strategy_from_config
from rnnlm.errors import UserError
from rnnlm.files import atomic_open
from rnnlm.interrupt import GracefulInterrupt, StopGuard, TrainingInterrupted, resume_command
from rnnlm.module import LanguageModel
from rnnlm.validation import check_config, check_resume

log = logging.getLogger(__name__)


def _drop_adverts(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")


# Lightning prints product tips through its rank-zero loggers; they are noise in every run's log.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_drop_adverts)


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def _continued_run(logger_cfg: DictConfig, checkpoint: dict) -> dict[str, str]:
    """A resumed run logs on to the wandb run that wrote its checkpoint, unless the config names one."""
    is_wandb = str(logger_cfg.get("_target_", "")).endswith("wandb_logger")
    if is_wandb and checkpoint.get("wandb_run_id") and not logger_cfg.get("id"):
        return {"id": checkpoint["wandb_run_id"]}
    return {}


def lightning_trainer_cfg(trainer: DictConfig) -> dict[str, Any]:
    """The trainer config without rnnlm's own keys (skip_nonfinite), ready for lightning.Trainer."""
    return {k: v for k, v in _plain(trainer).items() if k != "skip_nonfinite"}


def _build(key: str, node: Any, **kwargs: Any) -> Any:
    """instantiate(), with a library's refusal of a setting (a misspelt `+key`, a bad value) said in one
    sentence that names the config node, instead of a traceback from inside the library."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if user_error(err) is not None:
            raise
        cause = err.__cause__ or err
        raise UserError(f"{key} could not be built: {cause}; fix or remove that setting.") from err


def build(cfg: DictConfig, guard: StopGuard | None = None) -> tuple[L.LightningDataModule, LanguageModel, L.Trainer]:
    # Everything that can be checked without data first: a typo should cost seconds, not a corpus read.
    check_config(cfg)
    check_strategy(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True)
    resumed = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else {}
    if resumed:
        check_resume(cfg, resumed, cfg.ckpt_path)

    callbacks = [_build(f"callbacks.{k}", c) for k, c in (cfg.get("callbacks") or {}).items()]
    callbacks += [GracefulInterrupt(guard), SpawnedLogging()]  # what correctness needs, whatever the config says
    loggers = [_build(f"logger.{k}", c, **_continued_run(c, resumed)) for k, c in (cfg.get("logger") or {}).items()]
    trainer_cfg = lightning_trainer_cfg(cfg.trainer)
    strategy = trainer_cfg.pop("strategy", "auto")
    strategy = strategy_from_config(_build("trainer.strategy", strategy) if isinstance(strategy, dict) else strategy)
    trainer = _build(
        "trainer", trainer_cfg, strategy=strategy, callbacks=callbacks, logger=loggers or False,
        plugins=[AtomicCheckpointIO()],
    )  # fmt: skip

    # A resumed run must encode its data with the checkpoint's own vocabulary.
    tokenizer_json = resumed["hyper_parameters"]["tokenizer_json"] if resumed else None
    datamodule = instantiate(cfg.data, tokenizer=_plain(cfg.tokenizer), tokenizer_json=tokenizer_json)
    datamodule.prepare()
    module = LanguageModel(
        tokenizer_json=datamodule.tokenizer_json,
        model=_plain(cfg.model),
        optim=_plain(cfg.optim),
        scheduler=_plain(cfg.get("scheduler")),
        tokenizer_cfg=_plain(cfg.tokenizer),
    )
    module.skip_nonfinite = bool(cfg.trainer.get("skip_nonfinite", False))
    hparams = {**_plain(cfg), "num_params": module.num_parameters, "vocab_size": datamodule.vocab_size}
    for lg in trainer.loggers:
        lg.log_hyperparams(hparams)
    return datamodule, module, trainer


def _overrides() -> list[str]:
    """This run's command-line overrides (a sweep point's own values), when Hydra started it."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def write_results(path: Path, cfg: DictConfig, history: list[dict], metrics: dict, **extra: Any) -> None:
    """results.json: one run's numbers for the sweep report (rnnlm.report), written atomically."""
    speeds = [h["train/tokens_per_sec"] for h in history if "train/tokens_per_sec" in h]
    results = {
        "overrides": _overrides(),
        "cell": cfg.model.cell,
        "hidden_size": cfg.model.hidden_size,
        "num_layers": cfg.model.get("num_layers"),
        "metrics": metrics,
        "epochs": len(history),
        "tokens_per_sec": sum(speeds) / len(speeds) if speeds else None,
        "history": history,
        **extra,
    }
    with atomic_open(path) as f:
        f.write(json.dumps(results, indent=2) + "\n")


def _history(module: LanguageModel, trainer: L.Trainer) -> list[dict]:
    """Per-epoch numbers of the finished fit. Taken before testing, which reloads the best checkpoint (and
    its older history); read from last.ckpt when ddp_spawn trained in other processes."""
    if module.history:
        return list(module.history)
    ckpt = trainer.checkpoint_callback
    last = Path(ckpt.dirpath or "", "last.ckpt") if ckpt is not None else None
    return list(read_checkpoint(last).get("rnnlm_history", [])) if last and last.is_file() else []


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
    # From here to the end, Ctrl-C and SIGTERM end the run in bounded time, stuck or not (rnnlm.interrupt).
    with StopGuard(cfg.get("interrupt_grace_s", 30.0)) as guard:
        return _train(cfg, guard)


def _train(cfg: DictConfig, guard: StopGuard) -> dict[str, float]:
    started = time.perf_counter()
    _resolve_ckpt_path(cfg)
    datamodule, module, trainer = build(cfg, guard)
    guard.trainer = trainer
    log.info("model: %s, %s parameters", cfg.model.cell, f"{module.num_parameters:,}")
    try:
        with ranks_end_together(trainer):
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
            metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
            history = _history(module, trainer)
            ckpt = trainer.checkpoint_callback
            best_path = ckpt.best_model_path if ckpt is not None else ""
            if ckpt is not None and ckpt.best_model_score is not None:
                metrics["val/ppl"] = float(ckpt.best_model_score)  # the best epoch's, not the last one's
            if cfg.get("test"):
                results = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)
                metrics.update({k: float(v) for k, v in results[0].items()})
    except TrainingInterrupted as stop:
        _say_how_to_resume(stop, trainer)
        raise

    if not trainer.is_global_zero:
        return metrics
    write_results(
        Path(trainer.default_root_dir) / "results.json", cfg, history, metrics,
        num_params=module.num_parameters, wall_time_s=time.perf_counter() - started, best_checkpoint=best_path or None,
    )  # fmt: skip
    summary = f"best val/ppl {metrics.get('val/ppl', float('nan')):.2f}"
    if "test/ppl" in metrics:
        summary += f" | test/ppl {metrics['test/ppl']:.2f}"
    summary += f" | checkpoint {best_path or '(none saved)'}"
    print(summary, flush=True)
    return metrics


def _say_how_to_resume(stop: TrainingInterrupted, trainer: L.Trainer) -> None:
    if trainer.is_global_zero:
        print(
            f"stopped by {stop.signal_name} at epoch {stop.epoch}, step {stop.step}; saved {stop.checkpoint}\n"
            f"resume with:\n  {resume_command(_overrides(), stop.checkpoint)}",
            file=sys.stderr, flush=True,
        )  # fmt: skip


def objective(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a Hydra sweeper optimises."""
    if not name:
        return None
    if name not in metrics:
        log.warning("optimized_metric=%s was not logged; known: %s", name, ", ".join(sorted(metrics)))
        return None
    return metrics[name]

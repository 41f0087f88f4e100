"""train(cfg): the whole training run that train.py wires to Hydra.

Build the data (learning the tokenizer), the model around that tokenizer, the Trainer with its callbacks
and loggers; fit; test the best checkpoint; return the metrics (a sweeper optimises one of them).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rnnlm.checkpoint import read_checkpoint
from rnnlm.module import LanguageModel

log = logging.getLogger(__name__)


def _drop_adverts(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("💡 Tip")


# Lightning prints product tips through its rank-zero loggers; they are noise in every run's log.
for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
    logging.getLogger(_name).addFilter(_drop_adverts)


def _plain(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def build(cfg: DictConfig) -> tuple[L.LightningDataModule, LanguageModel, L.Trainer]:
    L.seed_everything(cfg.seed, workers=True)
    tokenizer_json = None
    if cfg.get("ckpt_path"):
        # A resumed run must encode its data with the checkpoint's own vocabulary.
        tokenizer_json = read_checkpoint(cfg.ckpt_path)["hyper_parameters"]["tokenizer_json"]
    datamodule = instantiate(cfg.data, tokenizer=_plain(cfg.tokenizer), tokenizer_json=tokenizer_json)
    datamodule.prepare()
    module = LanguageModel(
        tokenizer_json=datamodule.tokenizer_json,
        model=_plain(cfg.model),
        optim=_plain(cfg.optim),
        scheduler=_plain(cfg.get("scheduler")),
    )
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    hparams = {**_plain(cfg), "num_params": module.num_parameters, "vocab_size": datamodule.vocab_size}
    for lg in trainer.loggers:
        lg.log_hyperparams(hparams)
    return datamodule, module, trainer


def train(cfg: DictConfig) -> dict[str, float]:
    datamodule, module, trainer = build(cfg)
    log.info("model: %s, %s parameters", cfg.model.cell, f"{module.num_parameters:,}")
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    ckpt = trainer.checkpoint_callback
    best_path = ckpt.best_model_path if ckpt is not None else ""
    if ckpt is not None and ckpt.best_model_score is not None:
        metrics["val/ppl"] = float(ckpt.best_model_score)  # the best epoch's, not the last one's
    if cfg.get("test"):
        results = trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, verbose=False)
        metrics.update({k: float(v) for k, v in results[0].items()})

    summary = f"best val/ppl {metrics.get('val/ppl', float('nan')):.2f}"
    if "test/ppl" in metrics:
        summary += f" | test/ppl {metrics['test/ppl']:.2f}"
    summary += f" | checkpoint {best_path or '(none saved)'}"
    print(summary, flush=True)
    return metrics


def objective(metrics: dict[str, float], name: str | None) -> float | None:
    """The value a Hydra sweeper optimises."""
    if not name:
        return None
    if name not in metrics:
        log.warning("optimized_metric=%s was not logged; known: %s", name, ", ".join(sorted(metrics)))
        return None
    return metrics[name]

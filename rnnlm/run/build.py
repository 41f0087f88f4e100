"""From a composed config to the objects a run needs: the Trainer (callbacks, loggers, strategy), the
DataModule (with the checkpoint's tokenizer when there is one) and the LanguageModel.

Shared by train() and evaluate(); config mistakes are caught before any data is read.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, open_dict

from rnnlm.cli import plain, user_error
from rnnlm.data.datamodule import SentenceDataModule
from rnnlm.errors import UserError
from rnnlm.lifecycle import quiet  # noqa: F401  (library noise filtered before anything is built)
from rnnlm.lifecycle.checkpoint_io import AtomicCheckpointIO
from rnnlm.lifecycle.ddp import check_strategy, strategy_from_config
from rnnlm.lifecycle.stop_guard import StopGuard
from rnnlm.models.budget import count, fit_budget, scaled
from rnnlm.models.output import check_cutoffs, coverage_cutoffs
from rnnlm.models.trained import read_checkpoint
from rnnlm.precision import settle_precision
from rnnlm.run.config_checks import check_config, check_resume, check_same_model
from rnnlm.training.callbacks import (
    EpochSummary,
    GracefulInterrupt,
    RandomState,
    SamplerPosition,
    SpawnedLogging,
    WandbRunId,
)
from rnnlm.training.lightning_module import LanguageModel

log = logging.getLogger("rnnlm")


def instantiate_node(key: str, node: Any, **kwargs: Any) -> Any:
    """instantiate(), with a library's refusal of a setting (a misspelt `+key`, a bad value) said in one
    sentence that names the config node, instead of a traceback from inside the library."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if user_error(err) is not None:
            raise
        cause = err.__cause__ or err
        raise UserError(f"{key} could not be built: {cause}; fix or remove that setting.") from err


def _continued_run(logger_cfg: DictConfig, checkpoint: dict) -> dict[str, str]:
    """A resumed run logs on to the wandb run that wrote its checkpoint, unless the config names one."""
    is_wandb = str(logger_cfg.get("_target_", "")).endswith("wandb_logger")
    if is_wandb and checkpoint.get("wandb_run_id") and not logger_cfg.get("id"):
        return {"id": checkpoint["wandb_run_id"]}
    return {}


def build_trainer(cfg: DictConfig, checkpoint: dict, guard: StopGuard | None = None) -> L.Trainer:
    """The Trainer with the configured callbacks and loggers, plus the callbacks correctness needs whatever
    `callbacks=` says: the sampler's position and random states (exact resume), the epoch history
    (results.json), the interrupt handling, and logging in ddp_spawn ranks. bf16 where it would not be
    native becomes fp32 here, for training and evaluation alike."""
    settle_precision(cfg)
    configured = (cfg.get("callbacks") or {}).items()  # `callbacks.NAME=null` turns one off
    callbacks = [instantiate_node(f"callbacks.{k}", c) for k, c in configured if c is not None]
    callbacks += [SamplerPosition(), RandomState(), EpochSummary(), GracefulInterrupt(guard), SpawnedLogging()]
    logger_cfgs = (cfg.get("logger") or {}).items()
    loggers = [instantiate_node(f"logger.{k}", c, **_continued_run(c, checkpoint)) for k, c in logger_cfgs]
    if any(isinstance(lg, WandbLogger) for lg in loggers):
        callbacks.append(WandbRunId())
    if not loggers:  # `logger=[]`: Lightning stops a run whose learning-rate monitor has nowhere to write
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer_cfg = plain(cfg.trainer)
    strategy = trainer_cfg.pop("strategy", "auto")
    if isinstance(strategy, dict):
        strategy = instantiate_node("trainer.strategy", strategy)
    return instantiate_node(
        "trainer", trainer_cfg, strategy=strategy_from_config(strategy), callbacks=callbacks,
        logger=loggers or False, plugins=[AtomicCheckpointIO()],
    )  # fmt: skip


def build_datamodule(cfg: DictConfig, tokenizer_json: str | None) -> SentenceDataModule:
    """The DataModule, its settings and source files checked but nothing read yet (`prepare()` reads);
    `tokenizer_json` (a checkpoint's) encodes the data instead of a newly learned tokenizer, so the data
    matches that checkpoint's vocabulary."""
    return instantiate(cfg.data, tokenizer=plain(cfg.get("tokenizer")), tokenizer_json=tokenizer_json)


def build(cfg: DictConfig, guard: StopGuard | None = None) -> tuple[SentenceDataModule, LanguageModel, L.Trainer]:
    # Everything that can be checked without data first: a typo should cost seconds, not a corpus read.
    check_config(cfg)
    check_strategy(cfg.trainer)
    L.seed_everything(cfg.seed, workers=True)
    if cfg.data.get("mode") == "stream" and cfg.data.get("variable_bptt"):
        with open_dict(cfg):  # each epoch has its own number of windows: Lightning must read it anew
            cfg.trainer.reload_dataloaders_every_n_epochs = 1
    resumed = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else {}
    if resumed:
        check_resume(cfg, resumed, cfg.ckpt_path)
    initial = _initial_weights(cfg) if not resumed else {}
    source = resumed or initial  # whose tokenizer encodes the data
    datamodule = build_datamodule(cfg, source["hyper_parameters"]["tokenizer_json"] if source else None)
    trainer = build_trainer(cfg, resumed, guard)
    datamodule.prepare()
    datamodule.check_layout(trainer.world_size)
    model_cfg, counts = output_layer(plain(cfg.model), datamodule, source)
    model_cfg = sized_model(model_cfg, datamodule.vocab_size)
    module = LanguageModel(
        tokenizer_json=datamodule.tokenizer_json,
        model=model_cfg,
        optim=plain(cfg.optim),
        scheduler=plain(cfg.get("scheduler")),
        tokenizer_cfg=plain(cfg.tokenizer),
        data_mode=datamodule.mode,
        **plain(cfg.get("module") or {}),
    )
    if counts is not None:
        module.net.decoder.set_frequencies(counts)  # a checkpoint's own order replaces it when it loads
    if initial:
        module.net.load_state_dict(
            {k.removeprefix("net."): v for k, v in initial["state_dict"].items() if k.startswith("net.")}
        )
    hparams = {**plain(cfg), "num_params": module.num_parameters, "vocab_size": datamodule.vocab_size}
    for lg in trainer.loggers:
        lg.log_hyperparams(hparams)
    return datamodule, module, trainer


def output_layer(model: dict, datamodule: SentenceDataModule, checkpoint: dict) -> tuple[dict, np.ndarray | None]:
    """The model settings with the adaptive softmax's cutoffs made explicit (saved so, a checkpoint rebuilds the
    same layer), and the training target counts that order its classes (None for a full softmax)."""
    if model.get("output") != "adaptive":
        return model, None
    counts = datamodule.target_counts()
    if model.get("adaptive_cutoffs") is None:
        saved = ((checkpoint or {}).get("hyper_parameters") or {}).get("model") or {}
        cutoffs = saved.get("adaptive_cutoffs") or coverage_cutoffs(counts, model.get("adaptive_coverage"))
        model = {**model, "adaptive_cutoffs": cutoffs}
    check_cutoffs(model["adaptive_cutoffs"], len(counts))
    return model, counts


def sized_model(model: dict, vocab_size: int) -> dict:
    """The model settings with the widths `model.params` asks for made explicit (saved so, and logged)."""
    sized = fit_budget(model, vocab_size)
    if sized is not model:
        widths = ", ".join(f"model.{k}={sized[k]}" for k in scaled(model))
        log.info("model.params=%s: %s (%s parameters)", model["params"], widths,
                 f"{count(sized, vocab_size):,}")  # fmt: skip
    return sized


def _initial_weights(cfg: DictConfig) -> dict:
    """`init_from=CKPT`: a new run (fresh optimizer, epoch 0) that starts from that checkpoint's weights (its
    averaged ones, if it averaged) and its tokenizer: AWD-LSTM's fine-tuning stage, or any warm start."""
    if not cfg.get("init_from"):
        return {}
    checkpoint = read_checkpoint(cfg.init_from, key="init_from")
    check_same_model(
        cfg, checkpoint, f"init_from={cfg.init_from}", "start from it with the checkpoint's model settings"
    )
    return checkpoint

"""Check a train.py config before anything is read or built: unknown keys, wrong types, impossible values.

Hydra already refuses a key that is not in the config (unless added with `+`); what gets through is a
`+key` typo, a value of the wrong type (`model.hidden_size=abc`) or out of range. Each value is checked
by the code that owns it (the model by its cell's declared settings, the batching by the data module's checks, ...);
this module only calls those checks early, so a mistake costs seconds instead of a corpus read, and adds
the checks of settings that belong to the run itself (optimizer, trainer, seed). Resuming also checks that
the model and tokenizer asked for are the checkpoint's (anything else would fail deep inside torch, or
train on differently encoded data).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rnnlm import checks
from rnnlm.cli import plain
from rnnlm.errors import UserError
from rnnlm.files import WriteError, check_writable
from rnnlm.models.trained import check_local


def _params(fn: Callable, skip: Iterable[str] = ()) -> set[str]:
    sig = inspect.signature(fn)
    kinds = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    return {n for n, p in sig.parameters.items() if p.kind not in kinds and n not in ("self", *skip)}


def _known(group: str, node: DictConfig, accepted: set[str]) -> None:
    for key in node:
        if key not in accepted and not str(key).startswith("_"):
            raise UserError(
                f"{group}.{key} is not a setting of {group}: remove it or use one of {', '.join(sorted(accepted))}."
            )


def _call(fn: Callable, node: DictConfig, skip: Iterable[str] = ()) -> None:
    """fn(**the node's values for fn's parameters); absent keys keep fn's defaults."""
    values = OmegaConf.to_container(node, resolve=True)
    fn(**{k: values[k] for k in _params(fn, skip) if k in values})


def check_model(model: DictConfig) -> None:
    """The cell's declared settings (rnnlm.models.settings): unknown keys, types, ranges, relations."""
    from rnnlm.models.budget import check_scalable, widths
    from rnnlm.models.cells import network_settings

    values = OmegaConf.to_container(model, resolve=True)
    if values.get("params") is not None:  # the widths are the budget's to set: check them as the budget sets them
        check_scalable(values)
        values.update(widths(values, 1))
    network_settings(values)


def check_data(data: DictConfig) -> None:
    from rnnlm.data.catalog import source_class
    from rnnlm.data.datamodule import SentenceDataModule, check_data_settings
    from rnnlm.data.reading import check_fractions
    from rnnlm.data.sources import Prose

    source = source_class(data.get("source", "ptb"))
    accepted = _params(SentenceDataModule.__init__, skip=("tokenizer", "tokenizer_json")) | _params(source.__init__)
    if issubclass(source, Prose):  # its prose settings (ProseSettings) come through **prose, not named
        accepted |= source.prose_keys()
    _known("data", data, accepted)
    _call(check_data_settings, data)
    check_fractions({k.removesuffix("_fraction"): data[k] for k in ("val_fraction", "test_fraction") if k in data})


def check_tokenizer(tokenizer: DictConfig) -> None:
    from rnnlm.data.tokenizer import build_tokenizer, check_tokenizer_settings

    _known("tokenizer", tokenizer, _params(build_tokenizer, skip=("sentences",)))
    _call(check_tokenizer_settings, tokenizer)


def check_training(cfg: DictConfig) -> None:
    import lightning as L

    from rnnlm.training.averaging import check_averaging
    from rnnlm.training.lightning_module import LanguageModel
    from rnnlm.training.objective import check_loss_average, check_penalties

    optim = cfg.get("optim") or {}
    if "lr" in optim:
        checks.number("optim.lr", optim.lr, 0.0, None, low_open=True)
    module = cfg.get("module") or OmegaConf.create({})
    _known("module", module, _params(LanguageModel.__init__, skip=("tokenizer_json", "model", "optim", "scheduler",
                                                                     "tokenizer_cfg", "data_mode")))  # fmt: skip
    checks.boolean("module.skip_nonfinite", module.get("skip_nonfinite", False))
    check_loss_average(module.get("loss_average", "tokens"))
    check_penalties(module.get("ar", 0.0), module.get("tar", 0.0))
    averaging = module.get("averaging") or OmegaConf.create({})
    _known("module.averaging", averaging, _params(check_averaging, skip=("optimizer",)))
    check_averaging(**OmegaConf.to_container(averaging, resolve=True), optimizer=optim.get("_target_"))
    trainer = cfg.trainer
    _known("trainer", trainer, _params(L.Trainer.__init__))
    checks.integer("trainer.max_epochs", trainer.get("max_epochs"), -1, optional=True)
    for key in ("max_epochs", "max_steps"):  # Lightning would train nothing, then report the untrained model
        if trainer.get(key) == 0:
            raise UserError(f"trainer.{key}=0 trains nothing: set it to 1 or more (to evaluate a checkpoint "
                            "without training, run python eval.py ckpt_path=...).")  # fmt: skip
    clip = trainer.get("gradient_clip_val")
    if clip is not None:
        checks.number("trainer.gradient_clip_val", clip, 0.0, None)
    if cfg.get("init_from") and cfg.get("ckpt_path"):
        raise UserError(
            "init_from and ckpt_path were both given: ckpt_path resumes a run where it stopped, init_from starts "
            "a new run from a checkpoint's weights; keep one."
        )
    check_run(cfg)


def check_run(cfg: DictConfig) -> None:
    """What train.py and eval.py share: the seed and the grace period of a stop."""
    checks.integer("seed", cfg.get("seed"), 0)
    checks.number("interrupt_grace_s", cfg.get("interrupt_grace_s", 30), 0.0, None, low_open=True)


def check_paths(cfg: DictConfig) -> None:
    """Checkpoints are written atomically to local folders: a URL would silently become a folder `s3:`,
    and a folder that cannot be written should fail now, not after the first epoch."""
    ckpt = (cfg.get("callbacks") or {}).get("model_checkpoint") or {}
    for key, value in (("callbacks.model_checkpoint.dirpath", ckpt.get("dirpath")),
                       ("paths.log_dir", (cfg.get("paths") or {}).get("log_dir"))):  # fmt: skip
        if value:
            check_local(key, value)
    if ckpt.get("dirpath"):
        try:
            check_writable(Path(ckpt.dirpath) / "probe.ckpt")
        except WriteError as err:
            raise UserError(
                f"callbacks.model_checkpoint.dirpath={ckpt.dirpath} cannot hold checkpoints: {err.cause}; give a "
                "folder this process can write to."
            ) from err


def check_config(cfg: DictConfig) -> None:
    """Every check that needs no data: run first by train()."""
    check_model(cfg.model)
    check_data(cfg.data)
    check_tokenizer(cfg.tokenizer)
    check_training(cfg)
    check_paths(cfg)


def check_eval_config(cfg: DictConfig) -> None:
    """eval.py's config: the data and the trainer as for training, and the splits to evaluate."""
    import lightning as L

    check_data(cfg.data)
    _known("trainer", cfg.trainer, _params(L.Trainer.__init__))
    splits = list(cfg.get("splits") or [])
    if not splits or any(s not in ("val", "test") for s in splits):
        raise UserError(f"splits={splits} must name val and/or test, e.g. splits=[test].")
    check_run(cfg)


def _differences(cfg: DictConfig, checkpoint: dict) -> list[str]:
    """The structural model settings and tokenizer settings in which cfg differs from the checkpoint's."""
    from rnnlm.models.budget import scaled
    from rnnlm.models.cells import cell_class

    hp = checkpoint.get("hyper_parameters", {})
    saved_model = hp.get("model") or {}
    # The settings that shape the weights, as the checkpoint's cell declares them; dropout rates may change.
    structural = ["cell", *cell_class(saved_model.get("cell", "lstm")).Settings.structural()]
    if saved_model.get("params") is not None and plain(cfg.model.get("params")) == saved_model["params"]:
        structural = [k for k in structural if k not in scaled(saved_model)]  # the same budget, the same widths
    diffs = [
        f"model.{k}={cfg.model.get(k)!r} (checkpoint: {saved_model[k]!r})"
        for k in dict.fromkeys(structural)
        if k in saved_model and plain(cfg.model.get(k)) != saved_model[k]
    ]
    cutoffs = plain(cfg.model.get("adaptive_cutoffs"))  # null: the checkpoint's (counted when it was trained)
    if cfg.model.get("output") == "adaptive" and cutoffs is not None and cutoffs != saved_model.get("adaptive_cutoffs"):
        diffs.append(f"model.adaptive_cutoffs={cutoffs} (checkpoint: {saved_model.get('adaptive_cutoffs')})")
    saved_tok = hp.get("tokenizer_cfg") or {}
    return diffs + [
        f"tokenizer.{k}={cfg.tokenizer.get(k)!r} (checkpoint: {v!r})"
        for k, v in saved_tok.items()
        if plain(cfg.tokenizer.get(k)) != v
    ]


def check_same_model(cfg: DictConfig, checkpoint: dict, what: str, fix: str) -> None:
    """init_from: the weights must fit the model this run builds."""
    diffs = _differences(cfg, checkpoint)
    if diffs:
        raise UserError(f"{what} was trained with other settings than this run asks for: {'; '.join(diffs)}; {fix}.")


def check_resume(cfg: DictConfig, checkpoint: dict, path: str) -> None:
    """The model and tokenizer a resumed run asks for must be the checkpoint's."""
    hp = checkpoint.get("hyper_parameters", {})
    diffs = _differences(cfg, checkpoint)
    saved_mode, mode = hp.get("data_mode", "sentences"), cfg.data.get("mode", "sentences")
    if saved_mode != mode:
        raise UserError(
            f"ckpt_path={path} was trained with data.mode={saved_mode} and this run asks for data.mode={mode}: "
            f"resume with data.mode={saved_mode}, or start a new run without ckpt_path (its weights can still "
            "be evaluated either way with eval.py)."
        )
    if diffs:
        raise UserError(
            f"ckpt_path={path} was trained with other settings than this run asks for: {'; '.join(diffs)}; "
            "resume with the checkpoint's settings (drop those overrides), or start a new run without ckpt_path."
        )
    done, max_epochs = finished_epochs(checkpoint), cfg.trainer.get("max_epochs")
    if max_epochs not in (None, -1) and done >= max_epochs:
        raise UserError(
            f"ckpt_path={path} has already finished {done} epochs and trainer.max_epochs={max_epochs} asks for no "
            f"more: set trainer.max_epochs above {done} to train on from it (or evaluate it with eval.py)."
        )


def finished_epochs(checkpoint: dict) -> int:
    """Epochs whose training a checkpoint has finished: Lightning's count of processed epochs (a checkpoint
    saved at an epoch's end counts that epoch, one saved mid-epoch does not); `epoch` where there is none."""
    progress = ((checkpoint.get("loops") or {}).get("fit_loop") or {}).get("epoch_progress") or {}
    processed = (progress.get("current") or {}).get("processed")
    return int(processed) if processed is not None else int(checkpoint.get("epoch", 0))

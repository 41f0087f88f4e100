"""Check a train.py config before anything is read or built: unknown keys, wrong types, impossible values.

Hydra already refuses a key that is not in the config (unless added with `+`); what gets through is a
`+key` typo, a value of the wrong type (`model.hidden_size=abc`) or out of range. Each is reported as one
sentence naming the key, seconds before a corpus would have been read. Resuming also checks that the
model and tokenizer asked for are the checkpoint's (anything else would fail deep inside torch, or train
on differently encoded data).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, ListConfig

from rnnlm.errors import UserError

# Keys that decide the shapes (or meaning) of a checkpoint's weights; dropout may change on resuming.
STRUCTURAL = ("cell", "embed_size", "hidden_size", "num_layers", "linear_hidden_sizes", "tie_weights", "nonlinearity")


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


def _int(key: str, value: Any, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UserError(f"{key}={value!r} must be {need}{' or null' if optional else ''}.")


def _number(key: str, value: Any, low: float, high: float | None, high_open: bool = True, low_open=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        )
    if not ok:
        span = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{')' if high_open else ']'}"
        raise UserError(f"{key}={value!r} must be a number in {span}.")


def _bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise UserError(f"{key}={value!r} must be true or false.")


def check_model(model: DictConfig) -> None:
    from rnnlm.model import RNNLanguageModel, check_model_args

    _known("model", model, _params(RNNLanguageModel.__init__, skip=("vocab_size",)))
    for key in ("embed_size", "hidden_size", "num_layers"):
        _int(f"model.{key}", model.get(key), 1)
    _number("model.dropout", model.get("dropout", 0.0), 0.0, 1.0)
    sizes = model.get("linear_hidden_sizes") or []
    if not isinstance(sizes, (list, ListConfig)):
        raise UserError(f"model.linear_hidden_sizes={sizes!r} must be a list of sizes, e.g. [256] (or []).")
    for size in sizes:
        _int("model.linear_hidden_sizes", size, 1)
    _bool("model.tie_weights", model.get("tie_weights", False))
    defaults = {n: p.default for n, p in inspect.signature(RNNLanguageModel.__init__).parameters.items()}
    check_model_args(**{k: _plain(model.get(k, defaults[k])) for k in inspect.signature(check_model_args).parameters})


def check_data(data: DictConfig) -> None:
    from rnnlm.data.catalog import source_class
    from rnnlm.data.datamodule import SentenceDataModule

    source = source_class(data.get("source", "ptb"))
    accepted = _params(SentenceDataModule.__init__, skip=("tokenizer", "tokenizer_json"))
    _known("data", data, accepted | _params(source.__init__))
    _int("data.batch_size", data.get("batch_size"), 1, optional=True)
    _int("data.max_tokens", data.get("max_tokens"), 1, optional=True)
    if data.get("batch_size") is None and data.get("max_tokens") is None:
        raise UserError("data.batch_size and data.max_tokens are both null: set one of them.")
    _int("data.eval_batch_size", data.get("eval_batch_size"), 1, optional=True)
    _int("data.bucket_width", data.get("bucket_width", 1), 1)
    _int("data.min_len", data.get("min_len", 1), 0)
    _int("data.max_len", data.get("max_len"), 1, optional=True)
    _int("data.num_workers", data.get("num_workers", 0), 0)
    for key in ("val_fraction", "test_fraction"):
        if key in data:
            _number(f"data.{key}", data[key], 0.0, 1.0)


def check_tokenizer(tokenizer: DictConfig) -> None:
    from rnnlm.data.tokenizer import build_tokenizer, check_kind

    _known("tokenizer", tokenizer, _params(build_tokenizer, skip=("sentences",)))
    check_kind(tokenizer.get("kind", "word"))
    _int("tokenizer.vocab_size", tokenizer.get("vocab_size"), 1, optional=True)
    _int("tokenizer.min_freq", tokenizer.get("min_freq", 1), 1)
    for key in ("lowercase", "split_punct"):
        _bool(f"tokenizer.{key}", tokenizer.get(key, False))


def check_training(cfg: DictConfig) -> None:
    import lightning as L

    optim = cfg.get("optim") or {}
    if "lr" in optim:
        _number("optim.lr", optim.lr, 0.0, None, low_open=True)
    trainer = cfg.trainer
    _known("trainer", trainer, _params(L.Trainer.__init__) | {"skip_nonfinite"})
    _int("trainer.max_epochs", trainer.get("max_epochs"), -1, optional=True)
    clip = trainer.get("gradient_clip_val")
    if clip is not None:
        _number("trainer.gradient_clip_val", clip, 0.0, None)
    _bool("trainer.skip_nonfinite", trainer.get("skip_nonfinite", False))
    _int("seed", cfg.get("seed"), 0)
    _number("interrupt_grace_s", cfg.get("interrupt_grace_s", 30), 0.0, None, low_open=True)


def check_config(cfg: DictConfig) -> None:
    """Every check that needs no data: run first by train()."""
    check_model(cfg.model)
    check_data(cfg.data)
    check_tokenizer(cfg.tokenizer)
    check_training(cfg)


def check_resume(cfg: DictConfig, checkpoint: dict, path: str) -> None:
    """The model and tokenizer a resumed run asks for must be the checkpoint's."""
    hp = checkpoint.get("hyper_parameters", {})
    saved_model = hp.get("model") or {}
    diffs = [
        f"model.{k}={cfg.model.get(k)!r} (checkpoint: {saved_model[k]!r})"
        for k in STRUCTURAL
        if k in saved_model and _plain(cfg.model.get(k)) != saved_model[k]
    ]
    saved_tok = hp.get("tokenizer_cfg") or {}
    diffs += [
        f"tokenizer.{k}={cfg.tokenizer.get(k)!r} (checkpoint: {v!r})"
        for k, v in saved_tok.items()
        if _plain(cfg.tokenizer.get(k)) != v
    ]
    if diffs:
        raise UserError(
            f"ckpt_path={path} was trained with other settings than this run asks for: {'; '.join(diffs)}; "
            "resume with the checkpoint's settings (drop those overrides), or start a new run without ckpt_path."
        )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, ListConfig) else value

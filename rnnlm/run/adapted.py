"""evaluate_adapted(cfg): what eval.py runs with adapt=dynamic, cache or both (rnnlm.adapt). The checkpoint is
read on one device, at batch size 1, in fp32, with no Trainer: each split is scored in order, the static score of
the same reading beside the adapted one. With adapt.search the first adapt.val_tokens of val tune the settings and
every other split in `splits` is scored once with the best; both go to the terminal and results.json.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from rnnlm.adapt.dynamic import adaptable, check_statistics
from rnnlm.adapt.reading import Reading, reading
from rnnlm.adapt.search import Scored, adapted_and_static, cache_alone, search, static
from rnnlm.adapt.settings import AdaptSettings, adapt_settings
from rnnlm.adapt.statistics import load_or_gather
from rnnlm.data.tokenizer import sentence_start
from rnnlm.errors import UserError
from rnnlm.files import atomic_open
from rnnlm.models.trained import TrainedModel, load_model
from rnnlm.run.build import build_datamodule, plain
from rnnlm.run.config_checks import check_eval_config
from rnnlm.run.results import overrides

log = logging.getLogger("rnnlm")


def check_one_process(cfg: DictConfig, methods: list[str]) -> None:
    """Adaptation reads a split in order at batch size 1: there is nothing for a second process to do."""
    trainer = plain(cfg.trainer)
    devices, strategy = trainer.get("devices", "auto"), trainer.get("strategy", "auto")
    nodes = trainer.get("num_nodes", 1)
    if isinstance(strategy, dict):  # trainer=ddp's node
        strategy = str(strategy.get("_target_", "")).rsplit(".", 1)[-1]
    asked = []
    if isinstance(devices, (list, tuple)):
        several = len(devices) > 1
    else:
        several = devices not in (0, 1, "1", "auto", None)  # an int > 1, -1 (all), or "2"
    if several:
        asked.append(f"trainer.devices={devices}")
    if any(kind in str(strategy) for kind in ("ddp", "fsdp", "deepspeed")):
        asked.append(f"trainer.strategy={strategy}")
    if nodes not in (1, None):
        asked.append(f"trainer.num_nodes={nodes}")
    if asked:
        raise UserError(
            f"adapt={'+'.join(methods)} reads each split in order at batch size 1 on one process, so it cannot run "
            f"distributed ({', '.join(asked)}): drop those settings (one device is used)."
        )


def _device(cfg: DictConfig) -> str:
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    return "cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"


def describe(settings: AdaptSettings | None) -> str:
    if settings is None:
        return "static"
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in settings.tuned().items())


def evaluate_adapted(cfg: DictConfig) -> dict[str, float]:
    settings: AdaptSettings = adapt_settings(plain(cfg.adapt))
    check_eval_config(cfg)
    check_one_process(cfg, settings.methods)
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = load_model(cfg.ckpt_path, _device(cfg))
    if model.hparams.get("compile"):
        log.info("%s was trained with module.compile=true; adaptation runs it uncompiled (its weights change at "
                 "every segment)", cfg.ckpt_path)  # fmt: skip
    datamodule = build_datamodule(cfg, model.hparams["tokenizer_json"])
    datamodule.prepare()
    layout, trained = datamodule.mode, model.data_mode
    if trained != layout:
        log.warning("%s was trained with data.mode=%s and is evaluated here with data.mode=%s; add data.mode=%s for "
                    "the numbers of its own kind", cfg.ckpt_path, trained, layout, trained)  # fmt: skip
    level = "stream-level" if layout == "stream" else "sentence-level"
    start = sentence_start(trained)
    ms = _statistics(cfg, model, datamodule, start, settings)

    def text(split: str) -> Reading:
        limit = settings.val_tokens if split == "val" else None
        return reading(datamodule.splits[split], model.ids, layout, start).head(limit)

    record: dict[str, Any] = {"methods": settings.methods, "level": level, "layout": layout, "splits": {}}
    splits = list(cfg.splits)
    if settings.search and "val" in splits:
        settings = _tune(model, text("val"), settings, ms, level, record)
        splits.remove("val")
    for split in splits:
        record["splits"][split] = _score(model, text(split), settings, ms)
    record["settings"] = settings.tuned()
    names = {"ppl": "ppl", "static_ppl": "ppl_static", "dynamic_ppl": "ppl_dynamic", "cache_ppl": "ppl_cache"}
    metrics = {f"{split}/{names[k]}": v for split, r in record["splits"].items() for k, v in r.items() if k in names}
    results = {"overrides": overrides(), "checkpoint": str(Path(cfg.ckpt_path).resolve()), "data": plain(cfg.data),
               "adapt": record, "metrics": metrics, "wall_time_s": time.perf_counter() - started}  # fmt: skip
    with atomic_open(Path(cfg.paths.output_dir) / "results.json") as f:
        f.write(json.dumps(results, indent=2) + "\n")
    for split, r in record["splits"].items():
        speed = f", {r['tokens_per_sec']:,.0f} tokens/s" if "tokens_per_sec" in r else ""
        alone = (f"; dynamic alone {r['dynamic_ppl']:.2f}, cache alone {r['cache_ppl']:.2f}"
                 if "dynamic_ppl" in r else "")  # fmt: skip
        print(f"{split}/ppl {r['ppl']:.2f} adapted, {r['static_ppl']:.2f} static{alone} ({level}, batch size 1, "
              f"{r['tokens']:,} tokens{speed})", flush=True)  # fmt: skip
    print(f"adapt={'+'.join(settings.methods)} {describe(settings)} | checkpoint {cfg.ckpt_path}", flush=True)
    return metrics


def _score(model: TrainedModel, words: Reading, settings: AdaptSettings, ms: list[torch.Tensor] | None) -> dict:
    """One split's record: adapted and static, and with both methods each alone, from the same two readings."""
    adapted, base = adapted_and_static(model.net, words, settings, ms)
    entry = {"tokens": len(words), "ppl": adapted.ppl, "static_ppl": base.ppl,
             "tokens_per_sec": adapted.tokens_per_sec, "seconds": adapted.seconds}  # fmt: skip
    if settings.dynamic and settings.cache:
        entry.update(dynamic_ppl=adapted.model_ppl, cache_ppl=cache_alone(base, words, settings).ppl)
    return entry


def _tune(model: TrainedModel, val: Reading, settings: AdaptSettings, ms: list[torch.Tensor] | None, level: str,
          record: dict[str, Any]) -> AdaptSettings:  # fmt: skip
    """The search on `val`, each point printed as it is scored; the best settings."""
    base = static(model.net, val, settings.segment)
    print(f"tuning on the first {len(val):,} val tokens ({level}, batch size 1): static ppl {base.ppl:.2f}", flush=True)

    def say(point: Scored) -> None:
        print(f"  {describe(point.settings):60s} val ppl {point.ppl:8.2f}  ({point.tokens_per_sec:,.0f} tokens/s)",
              flush=True)  # fmt: skip

    best, tried = search(model.net, val, settings.fitted(len(val)), ms, say)
    record["search"] = [{**t.settings.tuned(), "val/ppl": t.ppl} for t in tried]
    record["splits"]["val"] = {"tokens": len(val), "ppl": min(t.ppl for t in tried), "static_ppl": base.ppl}
    return best


def _statistics(cfg: DictConfig, model: TrainedModel, datamodule, start: str,
                settings: AdaptSettings) -> list[torch.Tensor] | None:  # fmt: skip
    """Gathered as the model was trained (stream columns or sentences), whatever layout this evaluation reads."""
    if not (settings.dynamic and settings.rule == "rms"):
        return None
    train = datamodule.splits.get("train")
    train = train if train is not None and len(train) else None
    ms = load_or_gather(cfg.ckpt_path, adaptable(model.net), train, model.ids, model.data_mode, start, settings)
    check_statistics(settings, ms, f"data={cfg.data.get('name', 'this data')} has no training text to gather them from")
    return ms

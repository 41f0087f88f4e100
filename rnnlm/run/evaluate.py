"""evaluate(cfg): what eval.py runs. A checkpoint's corpus perplexity on the splits of any data source,
encoded with the checkpoint's own tokenizer; the numbers go to the terminal, the logger and results.json.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import lightning as L
from omegaconf import DictConfig

from rnnlm.data.tokenizer import sentence_start
from rnnlm.files import atomic_open
from rnnlm.lifecycle.loggers import finish_runs
from rnnlm.lifecycle.rank_failures import ranks_end_together
from rnnlm.lifecycle.stop_guard import StopGuard
from rnnlm.models.trained import read_checkpoint
from rnnlm.run.build import build_datamodule, build_trainer, plain
from rnnlm.run.config_checks import check_eval_config
from rnnlm.run.results import overrides, summary_line
from rnnlm.training.lightning_module import LanguageModel

log = logging.getLogger("rnnlm")


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if cfg.get("adapt") is not None:
        from rnnlm.run.adapted import evaluate_adapted

        return evaluate_adapted(cfg)
    check_eval_config(cfg)
    splits = list(cfg.splits)
    started = time.perf_counter()
    L.seed_everything(cfg.seed, workers=True)
    checkpoint = read_checkpoint(cfg.ckpt_path)
    datamodule = build_datamodule(cfg, checkpoint["hyper_parameters"]["tokenizer_json"])
    with StopGuard(cfg.get("interrupt_grace_s", 30.0)) as guard:
        trainer = build_trainer(cfg, {}, guard)
        guard.trainer = trainer
        datamodule.prepare()
        datamodule.check_layout(trainer.world_size)
        module = LanguageModel.load_from_checkpoint(cfg.ckpt_path, map_location="cpu", weights_only=True)
        trained_mode = module.hparams.get("data_mode", "sentences")
        if trained_mode != datamodule.mode:
            log.warning("%s was trained with data.mode=%s and is evaluated here with data.mode=%s; add "
                        "data.mode=%s for the numbers of its own kind", cfg.ckpt_path, trained_mode,
                        datamodule.mode, trained_mode)  # fmt: skip
        datamodule.sentence_start = sentence_start(trained_mode)  # after <eos> for a stream-trained model
        metrics: dict[str, float] = {}
        try:
            with ranks_end_together(trainer):
                for split in splits:
                    run = trainer.validate if split == "val" else trainer.test
                    (logged,) = run(module, datamodule=datamodule, verbose=False)
                    metrics.update({k: float(v) for k, v in logged.items()})
        finally:
            finish_runs(trainer)
    if trainer.is_global_zero:
        results = {
            "overrides": overrides(), "checkpoint": str(Path(cfg.ckpt_path).resolve()), "data": plain(cfg.data),
            "metrics": metrics, "wall_time_s": time.perf_counter() - started,
        }  # fmt: skip
        with atomic_open(Path(trainer.default_root_dir) / "results.json") as f:
            f.write(json.dumps(results, indent=2) + "\n")
        print(summary_line(metrics, cfg.ckpt_path, val_label="val/ppl"), flush=True)
    return metrics

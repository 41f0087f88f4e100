"""Every option of every config group composes, and every object it names can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.run.build import build_trainer
from rnnlm.run.config_checks import check_config

CONF = Path(__file__).resolve().parent.parent / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def cfg_with(*overrides: str, output_dir: Path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.mark.parametrize("model", options("model"))
def test_model_configs_build(model, tmp_path):
    cfg = cfg_with(f"model={model}", output_dir=tmp_path)
    net = RNNLanguageModel(vocab_size=50, **cfg.model)
    assert net.cell == model


@pytest.mark.parametrize("optim", options("optim"))
@pytest.mark.parametrize("scheduler", ["null", *options("scheduler")])
def test_optimizer_and_scheduler_configs_build(optim, scheduler, tmp_path):
    from rnnlm.data.tokenizer import build_tokenizer
    from rnnlm.training.lightning_module import LanguageModel

    overrides = [f"optim={optim}"] + ([f"scheduler={scheduler}"] if scheduler != "null" else [])
    cfg = cfg_with(*overrides, output_dir=tmp_path)
    if scheduler == "warmup":
        cfg.scheduler.total_steps = 1000  # null takes the trainer's estimate: no trainer here
    module = LanguageModel(
        build_tokenizer(["a b c"]).to_str(),
        dict(cell="gru", embed_size=4, hidden_size=4, num_layers=1),
        optim=dict(cfg.optim),
        scheduler=dict(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    out = module.configure_optimizers()
    opt = out["optimizer"] if isinstance(out, dict) else out
    group = opt.param_groups[0]  # a scheduler keeps the configured rate as initial_lr (warm-up starts lower)
    assert isinstance(opt, torch.optim.Optimizer) and group.get("initial_lr", group["lr"]) == cfg.optim.lr
    if scheduler != "null":
        assert out["lr_scheduler"]["monitor"] == "val/ppl"
        assert out["lr_scheduler"]["interval"] == ("step" if scheduler == "warmup" else "epoch")


LOGGER_TYPES = {"csv": ["CSVLogger"], "tensorboard": ["TensorBoardLogger"], "wandb": ["WandbLogger"],
                "many": ["CSVLogger", "TensorBoardLogger", "WandbLogger"]}  # fmt: skip


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_configs_build(logger, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")  # wandb's own process is tested in tests/test_wandb.py
    cfg = cfg_with(f"logger={logger}", output_dir=tmp_path)
    built = [instantiate(c) for c in cfg.logger.values()]
    assert [type(lg).__name__ for lg in built] == LOGGER_TYPES[logger]
    assert all(Path(lg.save_dir) == tmp_path for lg in built)


NO_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")


@pytest.mark.parametrize("trainer", [pytest.param(t, marks=[pytest.mark.gpu, NO_GPU]) if t in ("gpu", "ddp") else t
                                     for t in options("trainer")])  # fmt: skip
def test_trainer_and_callback_configs_build(trainer, tmp_path):
    cfg = cfg_with(f"trainer={trainer}", "logger=[]", output_dir=tmp_path)
    t = build_trainer(cfg, {})
    assert t.max_epochs == 5 and t.gradient_clip_val == 0.25 and t.num_devices == cfg.trainer.devices
    if trainer == "ddp_cpu":  # a DDP name or node becomes a strategy with bounded collectives
        assert type(t.strategy).__name__ == "_BoundedDDP" and t.strategy.collective_timeout.total_seconds() == 300
    names = [type(c).__name__ for c in t.callbacks]
    for name in ("ModelCheckpoint", "EarlyStopping", "ParameterSummary", "TokenThroughput", "SampleText",
                 "SamplerPosition", "RandomState", "EpochSummary", "GracefulInterrupt"):  # fmt: skip
        assert name in names


def test_callbacks_none_keeps_only_what_correctness_needs(tmp_path):
    t = build_trainer(cfg_with("callbacks=none", "logger=[]", output_dir=tmp_path), {})
    ours = [type(c).__name__ for c in t.callbacks if type(c).__module__.startswith("rnnlm")]
    assert ours == ["SamplerPosition", "RandomState", "EpochSummary", "GracefulInterrupt", "SpawnedLogging"]


@pytest.mark.parametrize("data", options("data"))
def test_data_configs_name_a_known_source(data, tmp_path):
    from rnnlm.data.catalog import SOURCES

    cfg = cfg_with(f"data={data}", output_dir=tmp_path)
    assert cfg.data.source in SOURCES and data.startswith(cfg.data.source)  # wikitext2 and wikitext103: wikitext


@pytest.mark.parametrize("debug", options("debug"))
def test_debug_presets_compose_and_pass_the_checks(debug, tmp_path):
    cfg = cfg_with(f"debug={debug}", output_dir=tmp_path)
    check_config(cfg)
    assert cfg.trainer.accelerator == "cpu"
    expected = {
        "default": ("max_epochs", 1),
        "fdr": ("fast_dev_run", True),
        "limit": ("limit_train_batches", 0.01),
        "overfit": ("overfit_batches", 3),
        "profiler": (
            "profiler",
            {"_target_": "lightning.pytorch.profilers.SimpleProfiler", "dirpath": str(tmp_path), "filename": "profile"},
        ),  # fmt: skip
        "tiny": ("max_epochs", 2),
    }
    key, value = expected[debug]
    assert cfg.trainer[key] == value
    assert cfg.task_name == ("train" if debug == "tiny" else "debug")


def test_eval_config_composes(tmp_path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="eval", overrides=["ckpt_path=x.ckpt"])
    assert list(cfg.splits) == ["val", "test"] and cfg.data.source == "ptb" and cfg.task_name == "eval"

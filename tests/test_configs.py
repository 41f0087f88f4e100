"""Every option of every config group composes, and every object it names can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from rnnlm.model import RNNLanguageModel
from rnnlm.training import lightning_trainer_cfg

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
    from rnnlm.module import LanguageModel

    overrides = [f"optim={optim}"] + ([f"scheduler={scheduler}"] if scheduler != "null" else [])
    cfg = cfg_with(*overrides, output_dir=tmp_path)
    module = LanguageModel(
        build_tokenizer(["a b c"]).to_str(),
        dict(cell="gru", embed_size=4, hidden_size=4, num_layers=1),
        optim=dict(cfg.optim),
        scheduler=dict(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    out = module.configure_optimizers()
    opt = out["optimizer"] if isinstance(out, dict) else out
    assert isinstance(opt, torch.optim.Optimizer) and opt.param_groups[0]["lr"] == cfg.optim.lr
    if scheduler != "null":
        assert out["lr_scheduler"]["monitor"] == "val/ppl"


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_configs_build(logger, tmp_path):
    cfg = cfg_with(f"logger={logger}", output_dir=tmp_path)
    assert all(instantiate(c) is not None for c in cfg.logger.values())


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_and_callback_configs_build(trainer, tmp_path):
    if trainer in ("gpu", "ddp") and not torch.cuda.is_available():
        pytest.skip("no GPU here")
    cfg = cfg_with(f"trainer={trainer}", output_dir=tmp_path)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    t = instantiate(lightning_trainer_cfg(cfg.trainer), callbacks=callbacks, logger=False)
    assert t.max_epochs == cfg.trainer.max_epochs and t.gradient_clip_val == 0.25


@pytest.mark.parametrize("data", options("data"))
def test_data_configs_name_a_known_source(data, tmp_path):
    from rnnlm.data.catalog import SOURCES

    cfg = cfg_with(f"data={data}", output_dir=tmp_path)
    assert cfg.data.source in SOURCES

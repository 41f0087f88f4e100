"""rnnlm/lightning_api.py on real Lightning objects: one test per private use, each failing with the Lightning
version and the attribute it lost, so that a Lightning upgrade says what to update."""

from __future__ import annotations

import csv
import inspect

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.strategies import DDPStrategy

from rnnlm.lightning_api import (
    CSVWriterWithKeyHook,
    DDPStrategyWithLauncherHook,
    SpawnLauncher,
    attached_trainer,
    filesystem_of,
    launched_processes,
    loggers_write_now,
    set_experiment,
    start_method_of,
    started_experiment,
    summary_max_depth,
)


def changed(what: str) -> str:
    return f"Lightning {L.__version__} no longer has {what}: update rnnlm/lightning_api.py"


def trainer(**kwargs) -> L.Trainer:
    kwargs = {"accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False,
              "enable_progress_bar": False, "enable_model_summary": False, **kwargs}  # fmt: skip
    return L.Trainer(**kwargs)


def ddp_trainer(strategy) -> L.Trainer:
    """A trainer on two CPU ranks, built but never fit: building it configures the strategy's launcher."""
    return trainer(devices=2, strategy=strategy)


class Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - batch).pow(2).mean()

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.ones(6, 1), batch_size=1)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class WritesSeen(L.Callback):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(loggers_write_now(trainer))


def test_loggers_write_now_reads_the_logger_connector():
    t = trainer(log_every_n_steps=0)
    assert hasattr(t, "_logger_connector"), changed("Trainer._logger_connector")
    assert hasattr(type(t._logger_connector), "should_update_logs"), changed("_LoggerConnector.should_update_logs")
    assert loggers_write_now(t) is False  # log_every_n_steps=0: never
    assert loggers_write_now(trainer(log_every_n_steps=2)) is True  # outside a loop: always
    assert loggers_write_now(object()) is True  # a stand-in trainer without a connector


def test_loggers_write_now_follows_log_every_n_steps_in_fit():
    seen = WritesSeen()
    trainer(log_every_n_steps=2, max_steps=6, callbacks=[seen]).fit(Tiny())
    assert seen.seen == [False, True] * 3, (
        f"{changed('the same should_update_logs (step = _batches_that_stepped + 1) in _LoggerConnector')}; "
        f"it said {seen.seen} for steps 1-6 with log_every_n_steps=2"
    )


def test_start_method_of_reads_ddp_strategy():
    assert hasattr(DDPStrategy(), "_start_method"), changed("DDPStrategy._start_method")
    assert start_method_of(DDPStrategy()) == "popen"
    assert start_method_of(DDPStrategy(start_method="spawn")) == "spawn"
    assert start_method_of(object()) is None


def test_spawn_launcher_is_what_ddp_spawn_configures():
    assert inspect.isclass(SpawnLauncher), changed("strategies.launchers.multiprocessing._MultiProcessingLauncher")
    for hook in ("get_extra_results", "update_main_process_results"):
        assert callable(getattr(SpawnLauncher, hook, None)), changed(f"_MultiProcessingLauncher.{hook}")
    assert list(inspect.signature(SpawnLauncher).parameters)[:2] == ["strategy", "start_method"], changed(
        "_MultiProcessingLauncher(strategy, start_method)"
    )
    launcher = ddp_trainer(DDPStrategy(start_method="spawn")).strategy.launcher
    assert type(launcher) is SpawnLauncher, changed(f"_MultiProcessingLauncher as ddp_spawn's launcher ({launcher})")


class Handing(SpawnLauncher):
    pass


class Replacing(DDPStrategyWithLauncherHook):
    def replace_launcher(self, launcher):
        self.configured = launcher
        return Handing(self, start_method=start_method_of(self)) if type(launcher) is SpawnLauncher else launcher


def test_launcher_hook_replaces_the_configured_launcher():
    assert hasattr(DDPStrategy, "_configure_launcher"), changed("DDPStrategy._configure_launcher")
    spawn = ddp_trainer(Replacing(start_method="spawn")).strategy
    assert hasattr(spawn, "_launcher"), changed("Strategy._launcher")
    assert type(spawn.configured) is SpawnLauncher, changed("a Trainer that calls Strategy._configure_launcher")
    assert type(spawn.launcher) is Handing, changed("Strategy.launcher returning Strategy._launcher")
    popen = ddp_trainer(Replacing(start_method="popen")).strategy
    assert popen.launcher is popen.configured and type(popen.launcher) is not Handing


def test_rnnlm_ddp_spawn_gets_its_handing_back_launcher():
    from rnnlm.lifecycle.ddp import ddp_strategy

    launcher = ddp_trainer(ddp_strategy(start_method="spawn")).strategy.launcher
    assert type(launcher).__name__ == "_HandingBackLauncher", changed(
        f"the ddp_spawn launcher rnnlm replaces ({launcher})"
    )


def test_launched_processes_reads_the_launchers_procs():
    for method in ("popen", "spawn"):
        t = ddp_trainer(DDPStrategy(start_method=method))
        assert hasattr(t.strategy.launcher, "procs"), changed(f"procs on {type(t.strategy.launcher).__name__}")
        assert launched_processes(t) == []  # none before fit
    assert launched_processes(None) == [] and launched_processes(trainer()) == []


def test_started_experiment_of_a_csv_logger(tmp_path):
    logger = CSVLogger(tmp_path)
    assert hasattr(logger, "_experiment"), changed("CSVLogger._experiment")
    assert started_experiment(logger) is None
    writer = logger.experiment
    assert started_experiment(logger) is writer
    other = ExperimentWriter(log_dir=str(tmp_path / "other"))
    set_experiment(logger, other)
    assert logger.experiment is other, changed("CSVLogger.experiment returning CSVLogger._experiment")


def test_started_experiment_of_a_wandb_logger(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), mode="disabled")
    assert hasattr(logger, "_experiment"), changed("WandbLogger._experiment")
    assert started_experiment(logger) is None  # no run started by asking


def test_filesystem_of_a_csv_logger_and_its_writer(tmp_path):
    logger = CSVLogger(tmp_path)
    for obj in (logger, logger.experiment):
        assert hasattr(obj, "_fs"), changed(f"{type(obj).__name__}._fs")
        fs = filesystem_of(obj)
        assert fs.isdir(str(tmp_path)) and not fs.isfile(str(tmp_path / "missing.csv"))


class FromHeader(CSVWriterWithKeyHook):
    def before_recording_keys(self) -> None:
        self.calls = getattr(self, "calls", 0) + 1
        if not self.metrics_keys and filesystem_of(self).isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                self.metrics_keys.extend(next(csv.reader(f), []))


def test_writer_key_hook_runs_before_the_new_keys_are_recorded(tmp_path):
    assert hasattr(ExperimentWriter, "_record_new_keys"), changed("ExperimentWriter._record_new_keys")
    writer = FromHeader(log_dir=str(tmp_path))
    (tmp_path / "metrics.csv").write_text("a,step\n1.0,0\n")  # as another process's writer left it
    writer.log_metrics({"b": 2.0}, step=1)
    writer.save()
    assert getattr(writer, "calls", 0) == 1, changed("ExperimentWriter.save calling _record_new_keys")
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows == [{"a": "1.0", "b": "", "step": "0"}, {"a": "", "b": "2.0", "step": "1"}]


def test_attached_trainer_of_a_module():
    module = Tiny()
    assert hasattr(module, "_trainer"), changed("LightningModule._trainer")
    assert attached_trainer(module) is None
    t = trainer()
    module.trainer = t
    assert attached_trainer(module) is t


@pytest.mark.parametrize("depth", [0, 2])
def test_summary_max_depth(depth):
    callback = ModelSummary(max_depth=depth)
    assert hasattr(callback, "_max_depth"), changed("ModelSummary._max_depth")
    assert summary_max_depth(callback) == depth

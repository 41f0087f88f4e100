"""The one module that touches Lightning's private API (names starting with `_`, private modules).

Each use is a small named function or class here, saying what it reads and why Lightning's public API does
not give it; tests/test_lightning_api.py checks each one on real Lightning objects, so a Lightning release that
changes one fails there, by name, instead of somewhere deep in a run. pyproject.toml pins Lightning to the
releases these were tested on. Kept at the bottom of the package: it imports nothing from rnnlm, so every
layer (rnnlm.lifecycle, rnnlm.training) may use it.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

# --- when loggers write -------------------------------------------------------------------------------------


def loggers_write_now(trainer: Any) -> bool:
    """Whether the loggers write the values logged at this step: `trainer._logger_connector.should_update_logs`.

    Public Lightning has only `trainer.log_every_n_steps`; which steps that selects depends on the fit loop's
    private count of optimizer steps (`_batches_that_stepped`), which the connector reads. True for an object
    with no connector (a stand-in trainer), as if every step were written.
    """
    connector = getattr(trainer, "_logger_connector", None)
    return connector.should_update_logs if connector is not None else True


# --- DDP launchers ------------------------------------------------------------------------------------------

SpawnLauncher = _MultiProcessingLauncher
"""The launcher of `ddp_spawn` (Lightning's private `_MultiProcessingLauncher`, from a private module): the only
way to hand the main process more than Lightning's own results is to subclass it (`get_extra_results`,
`update_main_process_results`), and `type(launcher) is SpawnLauncher` tells Lightning's own from a subclass."""


class DDPStrategyWithLauncherHook(DDPStrategy):
    """A DDPStrategy whose subclasses may swap the launcher Lightning chose, in `replace_launcher`.

    Lightning chooses it in the private `_configure_launcher` and keeps it in the private `_launcher`; the
    public `strategy.launcher` is read-only and the Trainer calls `_configure_launcher` itself (while it is
    built), so this override is the only place a strategy can put its own launcher.
    """

    def replace_launcher(self, launcher: Any) -> Any:
        """The launcher to use instead of `launcher`, the one Lightning configured (itself, by default)."""
        return launcher

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        self._launcher = self.replace_launcher(self._launcher)


def start_method_of(strategy: Any) -> str | None:
    """How a DDP strategy starts its ranks ("popen", "spawn", "fork"...): DDPStrategy's private `_start_method`.

    Lightning has no public attribute for the argument it was given; None for a strategy without one.
    """
    return getattr(strategy, "_start_method", None)


def launched_processes(trainer: Any) -> list:
    """The rank processes the trainer's launcher started from this process (none elsewhere, or before fit).

    `strategy.launcher` is public, but its `procs` list belongs to Lightning's private launcher classes
    (`_SubprocessScriptLauncher`, `_MultiProcessingLauncher`); nothing public lists the rank processes.
    """
    launcher = getattr(getattr(trainer, "strategy", None), "launcher", None)
    return list(getattr(launcher, "procs", None) or [])


# --- loggers ------------------------------------------------------------------------------------------------


def started_experiment(logger: Any) -> Any:
    """The logger's experiment if it has been created, else None: the private `_experiment` (CSVLogger,
    WandbLogger). The public `logger.experiment` creates one (a wandb run, a CSV folder) when read."""
    return logger._experiment


def set_experiment(logger: Any, experiment: Any) -> None:
    """Make `experiment` the logger's (a CSVLogger's writer): the private `_experiment`, which the public,
    read-only `experiment` property returns from then on."""
    logger._experiment = experiment


def filesystem_of(obj: Any) -> Any:
    """The fsspec filesystem a CSVLogger or its ExperimentWriter writes through: their private `_fs`.

    Lightning picks it from the path (local, s3://...) and does not expose it; rnnlm must read and write the
    same files through the same filesystem.
    """
    return obj._fs


class CSVWriterWithKeyHook(ExperimentWriter):
    """Lightning's CSV ExperimentWriter with a public hook, `before_recording_keys`, run at each save just
    before the writer adds the new metric names to `metrics_keys` (its private `_record_new_keys`): the only
    point where the columns it knows can be completed before it decides whether to rewrite the header."""

    def before_recording_keys(self) -> None:
        """Runs before each `save` records the new metric names (nothing by default)."""

    def _record_new_keys(self) -> set[str]:
        self.before_recording_keys()
        return super()._record_new_keys()


# --- modules and callbacks ----------------------------------------------------------------------------------


def attached_trainer(module: Any) -> Any:
    """The Trainer a LightningModule is attached to, or None: its private `_trainer`. The public
    `module.trainer` raises RuntimeError when there is none (a checkpoint loaded outside fit)."""
    return module._trainer


def summary_max_depth(callback: Any) -> int:
    """A ModelSummary callback's `max_depth` (0: no summary): its private `_max_depth`, the only place the
    constructor's argument is kept."""
    return callback._max_depth

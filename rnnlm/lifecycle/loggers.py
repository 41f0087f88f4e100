"""Loggers that conf/logger/*.yaml build: a CSV logger that survives several processes, and wandb that
never blocks (offline without credentials, grouped by sweep, resumed with its checkpoint)."""

from __future__ import annotations

import csv
import logging
import netrc
import os
from pathlib import Path
from urllib.parse import urlparse

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from rnnlm.lifecycle.ddp import in_multirun
from rnnlm.lightning_api import CSVWriterWithKeyHook, filesystem_of, set_experiment, started_experiment

log = logging.getLogger("rnnlm")


class _ContinuingWriter(CSVWriterWithKeyHook):
    """Lightning's CSV writer forgets the columns of a metrics.csv that another process (a ddp_spawn rank,
    an earlier fit or test stage) wrote, and then fails to rewrite it; this one starts from that header."""

    def before_recording_keys(self) -> None:
        fs = filesystem_of(self)
        if not self.metrics_keys and fs.isfile(self.metrics_file_path):
            with fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys.extend(next(csv.reader(f), []))


class CSVLogger(LightningCSVLogger):
    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if started_experiment(self) is None:
            filesystem_of(self).makedirs(self.root_dir, exist_ok=True)
            set_experiment(self, _ContinuingWriter(log_dir=self.log_dir))
        return started_experiment(self)


def wandb_credentials() -> bool:
    """Whether wandb could log in without asking: an API key in the environment or in ~/.netrc."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or ""
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def sweep_group() -> str | None:
    """One name for every run of a Hydra multirun (the sweep folder's), None for a single run."""
    from hydra.core.hydra_config import HydraConfig

    if not in_multirun():
        return None
    hydra = HydraConfig.get()
    return f"{hydra.job.name}-{Path(hydra.sweep.dir).name}"


def wandb_logger(
    save_dir: str,
    project: str = "rnnlm",
    entity: str | None = None,
    name: str | None = None,
    group: str | None = "auto",
    tags: list[str] | None = None,
    mode: str = "auto",
    log_model: bool | str = False,
    id: str | None = None,  # noqa: A002 (wandb's own name for it)
    **kwargs,
) -> WandbLogger:
    """A WandbLogger that never prompts.

    mode: "auto" logs online when credentials exist and offline otherwise (say once how to upload);
    "online" / "offline" / "disabled" as wandb means them. group "auto": the sweep's name in a multirun.
    id: a run to continue (train.py passes the one stored in the checkpoint it resumes).
    """
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_credentials() else "offline")
        if mode == "offline" and not os.environ.get("WANDB_MODE"):
            log.info("wandb: no credentials, logging offline (`wandb login` to log online)")
    if mode == "offline":
        log.info("wandb: offline run under %s/wandb; upload it later with `wandb sync %s/wandb/offline-run-*`",
                 save_dir, save_dir)  # fmt: skip
    os.environ["WANDB_MODE"] = mode  # also for wandb's own child process, so nothing falls back to a login prompt
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        entity=entity,
        name=name,
        group=sweep_group() if group == "auto" else group,
        tags=list(tags or []),
        log_model=log_model,
        id=id,
        resume="allow" if id else None,
        mode=mode,
        **kwargs,
    )


def finish_runs(trainer) -> None:
    """End the wandb run of a finished train(): Lightning leaves it open (so that more can be logged), and the
    next run in the same process (Hydra's basic launcher, a notebook) would otherwise log into it."""
    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger) and started_experiment(lg) is not None:
            lg.experiment.finish()

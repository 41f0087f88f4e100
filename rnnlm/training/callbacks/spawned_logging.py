"""SpawnedLogging: the job's logging config in ddp_spawn ranks."""

from __future__ import annotations

import logging
import logging.config
import multiprocessing

import lightning as L
from omegaconf import OmegaConf


def _job_logging() -> dict | None:
    """The logging config Hydra gave this job (terminal + train.log), resolved, if Hydra runs this process."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return OmegaConf.to_container(HydraConfig.get().job_logging, resolve=True)


class SpawnedLogging(L.Callback):
    """ddp_spawn ranks are fresh interpreters that Hydra never configured, so rank 0's per-epoch line went
    nowhere: they get the job's logging config, the terminal and train.log of a single-process run."""

    def __init__(self) -> None:
        self.config = _job_logging()

    def setup(self, trainer, pl_module, stage: str) -> None:
        spawned = multiprocessing.parent_process() is not None
        if spawned and self.config and not logging.getLogger().handlers:
            logging.config.dictConfig(self.config)

"""What train.py must know about running on several processes before it starts any of them."""

from __future__ import annotations

import os
import warnings

from omegaconf import DictConfig

from rnnlm.errors import UserError

# Strategies for which Lightning starts the other ranks by re-running the script with its arguments.
RELAUNCHING = {"ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false", "fsdp", "deepspeed"}

# Epoch metrics come from CorpusNLL, whose compute() already sums over ranks; Lightning cannot know that
# and asks for sync_dist=True, which would average values that are already identical on every rank.
warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")


def in_multirun() -> bool:
    """Whether this process runs one job of a Hydra multirun."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _processes_started_outside() -> bool:
    """SLURM tasks and torchrun start every rank themselves; Lightning then re-runs nothing."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    return SLURMEnvironment.detect() or TorchElasticEnvironment.detect() or "LOCAL_RANK" in os.environ


def check_strategy(trainer_cfg: DictConfig) -> None:
    """Fail at once, before any data is read, where DDP would otherwise hang or re-run a whole sweep."""
    strategy = trainer_cfg.get("strategy") or "auto"
    name = strategy if isinstance(strategy, str) else ""
    devices = trainer_cfg.get("devices", 1)
    several = not isinstance(devices, int) or devices != 1 or (trainer_cfg.get("num_nodes") or 1) > 1
    if name in RELAUNCHING and several and in_multirun() and not _processes_started_outside():
        raise UserError(
            f"trainer.strategy={name} cannot run inside a Hydra multirun: Lightning starts its other ranks by "
            "re-running train.py, which would start the whole sweep again (Lightning issue 11300); use "
            "trainer.strategy=ddp_spawn in sweeps, or train the DDP model as a single run."
        )

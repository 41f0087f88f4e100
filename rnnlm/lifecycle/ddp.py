"""DDP as rnnlm runs it: a strategy whose collectives cannot wait forever, checks made before any rank
starts, and what `ddp_spawn` ranks need from the process that spawned them."""

from __future__ import annotations

import io
import os
import warnings
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from omegaconf import DictConfig

from rnnlm.errors import UserError
from rnnlm.lightning_api import DDPStrategyWithLauncherHook, SpawnLauncher, start_method_of

# Strategies for which Lightning starts the other ranks by re-running the script with its arguments.
RELAUNCHING = {"ddp", "ddp_find_unused_parameters_true", "ddp_find_unused_parameters_false", "fsdp", "deepspeed"}
# How long a collective (the gradient all-reduce, a metric sum) may wait for the other ranks before the run
# ends with an error. Torch's own default is 30 minutes (10 for NCCL): a hung rank should cost less.
TIMEOUT_S = 300.0

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


def ddp_strategy(start_method: str = "popen", timeout_s: float = TIMEOUT_S, start_timeout_s: float = 600.0,
                 **kwargs: Any):  # fmt: skip
    """Lightning's DDPStrategy with a bounded wait for the other ranks (conf/trainer/ddp.yaml builds this).

    start_method: "popen" (trainer=ddp: Lightning re-runs train.py once per extra rank) or "spawn"
    (ddp_spawn: works inside a Hydra multirun). timeout_s: after that long in one collective every rank
    stops with a sentence saying so, instead of waiting forever for a rank that hung or died.
    start_timeout_s: how long the ranks may take to start and join (importing torch, reading the corpus).
    """
    for key, value in (("timeout_s", timeout_s), ("start_timeout_s", start_timeout_s)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"trainer.strategy.{key}={value!r} must be a positive number of seconds.")
    return _BoundedDDP(timedelta(seconds=timeout_s), start_method=start_method,
                       timeout=timedelta(seconds=max(start_timeout_s, timeout_s)), **kwargs)  # fmt: skip


class _HandingBackLauncher(SpawnLauncher):
    """ddp_spawn trains in spawned processes; Lightning hands the main process back the metrics and the best
    checkpoint's path. This also hands back every callback's state (the epoch history, the best score)."""

    def get_extra_results(self, trainer) -> dict[str, Any]:
        extra = super().get_extra_results(trainer)
        # As bytes, as Lightning sends its metrics: tensors would travel as shared memory, which is gone
        # once this process exits.
        buffer = io.BytesIO()
        torch.save({cb.state_key: cb.state_dict() for cb in trainer.callbacks}, buffer)
        extra["rnnlm_callback_states"] = buffer.getvalue()
        return extra

    def update_main_process_results(self, trainer, extra: dict[str, Any]) -> None:
        super().update_main_process_results(trainer, extra)
        states = torch.load(io.BytesIO(extra["rnnlm_callback_states"]), weights_only=True)
        for cb in trainer.callbacks:
            if states.get(cb.state_key):
                cb.load_state_dict(states[cb.state_key])


class _BoundedDDP(DDPStrategyWithLauncherHook):
    """DDP whose ranks may take `timeout` to join, and each collective after that `collective_timeout`."""

    def __init__(self, collective_timeout: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.collective_timeout = collective_timeout

    def setup_distributed(self) -> None:
        super().setup_distributed()
        set_timeout = getattr(dist.distributed_c10d, "_set_pg_timeout", None)  # torch >= 2.4
        if set_timeout is not None and dist.is_initialized():
            set_timeout(self.collective_timeout)

    def replace_launcher(self, launcher: Any) -> Any:
        if type(launcher) is SpawnLauncher:  # ddp_spawn's own launcher, not a subclass
            return _HandingBackLauncher(self, start_method=start_method_of(self))
        return launcher


def strategy_from_config(strategy: Any) -> Any:
    """A DDP strategy named by its string (`trainer.strategy=ddp_spawn`) gets rnnlm's timeout too; anything
    else (`auto`, an object instantiated from the config) is passed to Lightning as it is."""
    if not isinstance(strategy, str):
        return strategy
    entry = StrategyRegistry[strategy] if strategy in StrategyRegistry else None
    if entry is None or not issubclass(entry["strategy"], DDPStrategy) or "timeout" in entry["init_params"]:
        return strategy
    return ddp_strategy(**entry["init_params"])


def how_ranks_start(strategy: Any) -> str | None:
    """How the ranks of a DDP strategy (a name, a config node or an object) are started, if it is one."""
    if isinstance(strategy, str):
        return "popen" if strategy in RELAUNCHING else None
    if isinstance(strategy, (dict, DictConfig)):
        if str(strategy.get("_target_", "")).endswith("ddp_strategy"):
            return strategy.get("start_method", "popen")
        return None
    return start_method_of(strategy)


def check_strategy(trainer_cfg: DictConfig) -> None:
    """Fail at once, before any data is read, where DDP would otherwise hang or re-run a whole sweep."""
    strategy = trainer_cfg.get("strategy") or "auto"
    name = strategy if isinstance(strategy, str) else "ddp" if how_ranks_start(strategy) == "popen" else ""
    devices = trainer_cfg.get("devices", 1)
    several = not isinstance(devices, int) or devices != 1 or (trainer_cfg.get("num_nodes") or 1) > 1
    if name in RELAUNCHING and several and in_multirun() and not _processes_started_outside():
        raise UserError(
            f"trainer.strategy={name} cannot run inside a Hydra multirun: Lightning starts its other ranks by "
            "re-running train.py, which would start the whole sweep again (Lightning issue 11300); use "
            "trainer.strategy=ddp_spawn in sweeps, or train the DDP model as a single run."
        )

"""OmegaConf resolvers the configs use; train.py imports this module before Hydra reads conf/."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def sqlite_url(path: str) -> str:
    """`${rnnlm.sqlite:outputs/optuna/study.db}`: an SQLite URL whose folder exists (SQLite makes only the file)."""
    p = Path(path).expanduser().resolve()
    p.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{p}"


def gpus(accelerator: str, devices) -> int:
    """`${rnnlm.gpus:${trainer.accelerator},${trainer.devices}}`: the GPUs a cluster job asks for: none for a CPU
    run (a GPU request on a node without GPUs is refused by the scheduler), else one per device."""
    return 0 if str(accelerator) == "cpu" else int(devices)


OmegaConf.register_new_resolver("rnnlm.sqlite", sqlite_url, replace=True)
OmegaConf.register_new_resolver("rnnlm.gpus", gpus, replace=True)

"""OmegaConf resolvers the configs use; train.py imports this module before Hydra reads conf/."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf


def sqlite_url(path: str) -> str:
    """`${rnnlm.sqlite:outputs/optuna/study.db}`: an SQLite URL whose folder exists (SQLite makes only the file)."""
    p = Path(path).expanduser().resolve()
    p.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{p}"


OmegaConf.register_new_resolver("rnnlm.sqlite", sqlite_url, replace=True)

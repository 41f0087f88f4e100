"""The cells a network can be built around, by name: one line each, "module:class" (imported when first used).

A new cell is one file here (its settings and its module: see base.py), its conf/model/<cell>.yaml, and one
line below; or, from outside the package, `register("mycell", MyCell)`.
"""

from __future__ import annotations

import importlib
from typing import Any

from rnnlm.errors import UserError

REGISTRY: dict[str, Any] = {
    "rnn": "rnnlm.models.cells.recurrent:RNN",
    "gru": "rnnlm.models.cells.recurrent:GRU",
    "lstm": "rnnlm.models.cells.recurrent:LSTM",
    "vanilla": "rnnlm.models.cells.vanilla:Vanilla",
    "qrnn": "rnnlm.models.cells.qrnn:QRNN",
    "mogrifier": "rnnlm.models.cells.mogrifier:Mogrifier",
    "mingru": "rnnlm.models.cells.minimal:MinGRU",
    "minlstm": "rnnlm.models.cells.minimal:MinLSTM",
    "transformer": "rnnlm.models.cells.transformer:Transformer",
    "window": "rnnlm.models.cells.window:Window",
}


def register(name: str, cell: Any) -> None:
    """Add a cell (a base.Cell subclass, or its "module:class" path) under `name`, for `model.cell=name`."""
    REGISTRY[name] = cell


def cell_class(name: Any) -> Any:
    if name not in REGISTRY:
        raise UserError(f"model.cell={name} is not a known cell: use one of {', '.join(REGISTRY)}.")
    cell = REGISTRY[name]
    if isinstance(cell, str):
        module, attribute = cell.split(":")
        cell = REGISTRY[name] = getattr(importlib.import_module(module), attribute)
    return cell


def network_settings(model: dict[str, Any]) -> Any:
    """`model.*` (a config node or a checkpoint's saved settings, as a dict) as its cell's checked settings;
    what is absent takes its declared default."""
    name = model.get("cell", "lstm")
    settings = cell_class(name).Settings
    accepted = settings.names()
    for key in model:
        if key not in accepted and not str(key).startswith("_"):
            raise UserError(_not_a_setting(key, name, accepted))
    built = settings(**{k: v for k, v in model.items() if k in accepted})
    built.check()
    return built


def _not_a_setting(key: str, cell: str, accepted: list[str]) -> str:
    owners = [name for name in REGISTRY if key in cell_class(name).Settings.names()]
    if owners:
        names = owners[0] if len(owners) == 1 else f"{', '.join(owners[:-1])} and {owners[-1]}"
        return f"model.{key} applies to the {names} cells only: drop it for model={cell}."
    return f"model.{key} is not a setting of model: remove it or use one of {', '.join(sorted(accepted))}."

"""`model.params=2.6M`: the widths that give a network that many parameters, so cells compare at equal size.

The count is the one the run's summary prints: every parameter of the network (embedding, cell, head, output
layer), a tied matrix once. Each cell's settings say which widths it scales (`budget_widths`): for the
recurrent cells model.hidden_size (one width for every layer) and, when the output layer is tied to the
embedding with no head between, model.embed_size with it (tying needs them equal); the Transformer scales its
model and feed-forward widths together. Every other setting stays as given. The network is built on the meta
device to count, so no memory is touched; steps from 1 to 65,536 are searched and the count nearest the budget
is taken, within 5%.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from rnnlm.errors import UserError

TOLERANCE = 0.05
WIDEST = 65_536
_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_count(key: str, value: Any) -> int:
    """2600000, 2.6e6, "2.6M" or "650K" as a parameter count."""
    if isinstance(value, bool):
        count = None
    elif isinstance(value, (int, float)):
        count = value
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([kKmMgG]?)\s*", str(value))
        count = float(match[1]) * _SUFFIXES[match[2].upper()] if match else None
    if count is None or count < 1:
        raise UserError(f"{key}={value!r} is not a parameter count: give one such as 2600000, 2.6M or 650K.")
    return round(count)


def check_budget(key: str, value: Any) -> None:
    if value is not None:
        parse_count(key, value)


def check_scalable(model: dict[str, Any]) -> None:
    if not isinstance(model.get("hidden_size", 0), int):
        widths = list(model["hidden_size"])
        raise UserError(f"model.params scales one width for every layer, not model.hidden_size={widths}: "
                        "give model.hidden_size one number, or drop model.params.")  # fmt: skip


def widths(model: dict[str, Any], step: int) -> dict[str, int]:
    """The widths model.params sets, at step `step` of the search: its cell's to say (budget_widths)."""
    from rnnlm.models.cells import cell_class

    return cell_class(model.get("cell", "lstm")).Settings.budget_widths(model, step)


def scaled(model: dict[str, Any]) -> list[str]:
    """The settings model.params sets."""
    return list(widths(model, 1))


def count(model: dict[str, Any], vocab_size: int, step: int | None = None) -> int:
    """The parameters of the network `model` describes, at the widths of search step `step` (None: as given)."""
    from rnnlm.models.rnn_lm import RNNLanguageModel

    settings = {**model, "params": None, **(widths(model, step) if step is not None else {})}
    with torch.device("meta"):
        net = RNNLanguageModel(vocab_size, **settings)
    return sum(p.numel() for p in net.parameters())


def fit_budget(model: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """`model` (model.* as a dict) with the widths model.params asks for; unchanged where it is null."""
    if model.get("params") is None:
        return model
    budget = parse_count("model.params", model["params"])
    check_scalable(model)
    low, high = 1, WIDEST  # the narrowest width whose count reaches the budget
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if count(model, vocab_size, mid) < budget else (low, mid)
    nearest = min({max(low - 1, 1), low}, key=lambda w: abs(count(model, vocab_size, w) - budget))
    got, sized = count(model, vocab_size, nearest), widths(model, nearest)
    if abs(got - budget) > TOLERANCE * budget:
        named = ", ".join(f"model.{k}={v}" for k, v in sized.items())
        raise UserError(
            f"model.params={model['params']} cannot be met within 5% by model={model.get('cell', 'lstm')} over "
            f"{vocab_size:,} words: the nearest is {got:,} parameters ({named}); set model.params={got} or more."
        )
    return {**model, **sized}

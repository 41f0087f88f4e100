"""Checks of single setting values, phrased one way wherever a setting is checked.

Each setting is checked in one place, by the code that owns it (the model's arguments by the model, the
batching by the sampler, ...); config_checks runs those owners' checks before anything is built, so a
mistake costs seconds. Each failure is one sentence naming the key: `model.hidden_size='abc' must be a
positive integer.`
"""

from __future__ import annotations

from typing import Any

from rnnlm.errors import UserError


def integer(key: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        need = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise UserError(f"{key}={value!r} must be {need}{' or null' if optional else ''}.")


def number(key: str, value: Any, low: float, high: float | None, high_open: bool = True, low_open=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            high is None or (value < high if high_open else value <= high)
        )
    if not ok:
        span = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{')' if high_open else ']'}"
        raise UserError(f"{key}={value!r} must be a number in {span}.")


def boolean(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise UserError(f"{key}={value!r} must be true or false.")

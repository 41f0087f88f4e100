"""Modules that moved when the house was rearranged (0.2): their old import paths still work, each with a
DeprecationWarning that names the new one. The README's "What moved" table says the same to users."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    **{f"rnnlm.training.{old}": f"rnnlm.run.{new}" for old, new in (
        ("build", "build"), ("config_checks", "config_checks"), ("run", "train"), ("evaluate", "evaluate"),
        ("results", "results"))},
    **{f"rnnlm.training.{name}": f"rnnlm.lifecycle.{name}" for name in (
        "checkpoint_io", "stop_guard", "interrupt", "rank_failures", "ddp", "loggers", "quiet")},
    "rnnlm.models.vanilla": "rnnlm.models.cells.vanilla",
    "rnnlm.models.rnn_stack": "rnnlm.models.cells.stack",
}  # fmt: skip


class _OldPath(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as the module at its new one (the same module object, not a copy)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} has moved to {new}: import it from there.", DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        pass  # the new module ran when it was imported


def install() -> None:
    if not any(isinstance(finder, _OldPath) for finder in sys.meta_path):
        sys.meta_path.append(_OldPath())

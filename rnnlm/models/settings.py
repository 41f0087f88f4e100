"""A network's settings, declared once: each is a dataclass field holding its name, type, default, its check
and whether it shapes the weights (`structural`: a resume or `init_from` must keep it).

NetworkSettings holds what every network has around its cell (embedding, dropouts, head, output layer); each
cell's own settings subclass it (rnnlm/models/cells/). Everything else reads these declarations: the network's
constructor, the config check before any data is read, the resume comparison, and a test that holds each
conf/model/<cell>.yaml to its class's fields and defaults.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from rnnlm import checks
from rnnlm.errors import UserError
from rnnlm.models.budget import check_budget

Check = Callable[[str, Any], None]


def setting(default: Any, check: Check | None = None, structural: bool = False) -> Any:
    """One declared setting: `check(key, value)` raises a UserError naming `model.<name>`."""
    meta = {"check": check, "structural": structural}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# The checks a setting can name; each phrased by rnnlm.checks, one sentence that names the key.
def positive(key: str, value: Any) -> None:
    checks.integer(key, value)


def rate(key: str, value: Any) -> None:
    checks.number(key, value, 0.0, 1.0)


def optional_rate(key: str, value: Any) -> None:
    if value is not None:
        rate(key, value)


def flag(key: str, value: Any) -> None:
    checks.boolean(key, value)


def one_of(*options: str, default: str | None = None) -> Check:
    names = [f"{o} (the default)" if o == default else o for o in options]

    def check(key: str, value: Any) -> None:
        if value not in options:
            raise UserError(f"{key}={value} is not known: use {' or '.join(names)}.")

    return check


def sizes(key: str, value: Any) -> None:
    """A list of widths, possibly empty (e.g. model.linear_hidden_sizes)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise UserError(f"{key}={value!r} must be a list of sizes, e.g. [256] (or []).")
    for size in value:
        checks.integer(key, size)


def positive_range(key: str, value: Any) -> None:
    if value is not None:
        checks.number(key, value, 0.0, None, low_open=True)


@dataclasses.dataclass(kw_only=True)
class NetworkSettings(ABC):
    """The settings of the network around its cell (pytorch/examples' names; AWD-LSTM's dropouts)."""

    cell: str = setting("lstm", structural=True)  # checked against the registry (rnnlm.models.cells)
    embed_size: int = setting(200, positive, structural=True)
    dropout: float = setting(0.2, rate)  # the one rate each unset rate below takes
    dropout_input: float | None = setting(None, optional_rate)
    dropout_output: float | None = setting(None, optional_rate)
    dropout_embed: float = setting(0.0, rate)
    # One mask per sequence, shared over time; structural because it runs a cell's layers one by one.
    locked_dropout: bool = setting(False, flag, structural=True)
    linear_hidden_sizes: list[int] = setting([], sizes, structural=True)
    tie_weights: bool = setting(False, flag, structural=True)
    init_range: float | None = setting(None, positive_range)
    output: str = setting("full", one_of("full", "adaptive", default="full"), structural=True)
    adaptive_cutoffs: list[int] | None = setting(None)  # checked with the other adaptive settings
    adaptive_coverage: list[float] = setting([0.9, 0.95, 0.99])
    adaptive_div_value: float = setting(4.0, structural=True)
    # A parameter count (2.6M): the widths are chosen to meet it (rnnlm.models.budget); null: as given.
    params: int | float | str | None = setting(None, check_budget, structural=True)

    NAME: ClassVar[str] = "model"

    @property
    @abstractmethod
    def output_size(self) -> int:
        """The width of the cell's output (what the head, or the output layer, reads): each cell's to say."""

    def shape(self) -> str:
        """The cell in a few words, for the run's summary: each cell's own where it has more to say."""
        return f"{self.cell} {self.output_size}"

    def check(self) -> None:
        """Each field's own check, then the relations between fields (one sentence that says what to change)."""
        for field in dataclasses.fields(self):
            if field.metadata.get("check"):
                field.metadata["check"](f"{self.NAME}.{field.name}", getattr(self, field.name))
        self.check_relations()

    def check_relations(self) -> None:
        if self.output == "adaptive":
            _check_adaptive(self.adaptive_cutoffs, self.adaptive_coverage, self.adaptive_div_value)
        last = self.linear_hidden_sizes[-1] if self.linear_hidden_sizes else self.output_size
        if self.tie_weights and last != self.embed_size:
            source = (
                "the last of model.linear_hidden_sizes"
                if self.linear_hidden_sizes
                else "the last layer's size (model.hidden_size)"
            )
            raise UserError(
                f"model.tie_weights=true needs {source} ({last}) to equal model.embed_size ({self.embed_size}): "
                f"set model.embed_size={last}, make the last layer {self.embed_size} wide, or set "
                "model.tie_weights=false."
            )

    @classmethod
    def budget_widths(cls, model: dict[str, Any], step: int) -> dict[str, int]:
        """The widths `model.params` sets at search step `step` (rnnlm.models.budget): model.hidden_size, and
        model.embed_size with it when the output layer is tied to the embedding with no head between."""
        tied = model.get("tie_weights", cls.defaults()["tie_weights"]) and not model.get("linear_hidden_sizes")
        return dict.fromkeys(["hidden_size", "embed_size"] if tied else ["hidden_size"], step)

    def rate(self, value: float | None) -> float:
        """An unset rate is model.dropout (pytorch/examples' one rate); AWD-LSTM sets each apart."""
        return self.dropout if value is None else value

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def structural(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("structural")]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return dataclasses.asdict(cls())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_adaptive(cutoffs, coverage, div_value: float) -> None:
    """The adaptive softmax's settings, as far as they can be checked before the vocabulary is known."""
    if cutoffs is not None:
        sizes("model.adaptive_cutoffs", cutoffs)
        if not cutoffs or list(cutoffs) != sorted(set(cutoffs)):
            raise UserError(f"model.adaptive_cutoffs={list(cutoffs)} must be increasing token counts, e.g. "
                            "[2000, 10000], or null for cutoffs from model.adaptive_coverage.")  # fmt: skip
    if isinstance(coverage, (str, bytes)) or not isinstance(coverage, Sequence) or not coverage:
        raise UserError(f"model.adaptive_coverage={coverage!r} must be a list of fractions, e.g. [0.9, 0.95, 0.99].")
    for share in coverage:
        checks.number("model.adaptive_coverage", share, 0.0, 1.0, low_open=True)
    checks.number("model.adaptive_div_value", div_value, 1.0, None)

"""Every source by its `data.source` name."""

from __future__ import annotations

from typing import Any

from rnnlm.data.hf import HFDataset
from rnnlm.data.imdb import IMDB
from rnnlm.data.sources import PennTreebank, Source, TextFiles
from rnnlm.data.tables import TableFile
from rnnlm.data.wikitext import WikiText
from rnnlm.errors import UserError

SOURCES: dict[str, type[Source]] = {
    "ptb": PennTreebank, "text": TextFiles, "csv": TableFile, "imdb": IMDB, "hf": HFDataset, "wikitext": WikiText,
}  # fmt: skip


def source_class(name: str) -> type[Source]:
    if name not in SOURCES:
        raise UserError(f"data.source={name} is not known: use one of {', '.join(SOURCES)}.")
    return SOURCES[name]


def make_source(kind: str, /, **args: Any) -> Source:
    return source_class(kind)(**args)  # positional-only: a source may take a `name` (data=hf's dataset)

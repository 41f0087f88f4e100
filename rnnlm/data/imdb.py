"""The Large Movie Review Dataset (aclImdb/ folder) as sentences."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from rnnlm.data.reading import ReadNotes, carve, check_fractions, decode
from rnnlm.data.sources import Prose, ProseSettings, RawCorpus, Source
from rnnlm.errors import UserError

_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


class IMDB(Source, Prose):
    """The Large Movie Review Dataset's aclImdb/ folder: train = train/{pos,neg}(+unsup) minus a carved
    validation share, test = test/{pos,neg}. `<br />` breaks become line breaks before sentence splitting."""

    name = "imdb"
    prose_defaults = ProseSettings(sentence_split=True, lowercase=True)
    fixed = frozenset({"sentence_split", "test_fraction"})  # reviews are prose; test is the dataset's own

    def __init__(self, root: str | None = None, include_unsup: bool = True, **prose: Any) -> None:
        """`prose`: language, lowercase (default true here), val_fraction, seed (ProseSettings)."""
        Prose.__init__(self, **prose)
        val_fraction = self.prose.val_fraction
        check_fractions({"val": val_fraction})
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

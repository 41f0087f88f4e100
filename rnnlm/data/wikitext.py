"""WikiText-2 and -103 (`data=wikitext2`, `data=wikitext103`; Merity et al. 2016) as the published numbers read
them, from a folder of their files or from the Hub's copy (through rnnlm.data.hf)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlm.data.hf import HFDataset
from rnnlm.data.reading import LineFile, ReadNotes, check_file
from rnnlm.data.sources import SPLITS, RawCorpus, Source, files_digest
from rnnlm.errors import UserError


class WikiText(Source):
    """WikiText-2 or -103 (Merity et al. 2016) as the published numbers read it: every line of the
    `wiki.{train,valid,test}.tokens` files (or `.raw`) as it is, blank ones too (in stream mode each line
    gets its <eos>), the files' own <unk>. From a folder (`data.root`) or from the Hub's `wikitext`
    dataset (whose rows are those lines)."""

    name = "wikitext"

    def __init__(
        self,
        size: int = 2,
        raw: bool = False,
        root: str | None = None,
        name: str = "Salesforce/wikitext",
        seed: int = 0,
    ) -> None:
        """`name`: where the Hub copy is (a mirror's name, or a local snapshot of the dataset's folder)."""
        if size not in (2, 103):
            raise UserError(f"data.size={size} is not a WikiText: use 2 or 103.")
        self.size, self.raw = size, raw
        self.root = Path(root).expanduser() if root else None
        if self.root is not None:
            for path in self._files().values():
                check_file(path, "data.root", f"a folder holding wiki.{{train,valid,test}}.{self._suffix}")
        self.hub = (
            None
            if self.root
            else HFDataset(name=name, config=f"wikitext-{size}-{'raw-' if raw else ''}v1", keep_blank_lines=True)
        )

    @property
    def _suffix(self) -> str:
        return "raw" if self.raw else "tokens"

    def _files(self) -> dict[str, Path]:
        return {s: self.root / f"wiki.{name}.{self._suffix}" for s, name in zip(SPLITS, ("train", "valid", "test"))}

    def settings(self) -> dict[str, Any]:
        return {"size": self.size, "raw": self.raw, "root": str(self.root) if self.root else None}

    def fingerprint(self) -> dict[str, Any]:
        if self.hub is not None:
            return {**self.hub.fingerprint(), "source": self.name, **self.settings()}
        return {"source": self.name, **self.settings(), "files": files_digest(list(self._files().values()))}

    def read(self) -> RawCorpus:
        if self.hub is not None:
            return self.hub.read()
        notes = ReadNotes()  # every line, blank ones too, a block at a time (WikiText-103: 540 MB of text)
        return RawCorpus({s: LineFile(p, "data.root", notes, keep_blank=True) for s, p in self._files().items()}, notes)

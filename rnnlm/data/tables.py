"""CSV, TSV and Parquet tables: one column's text, split into sentences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnlm.data.reading import ReadNotes, carve, check_file, check_fractions
from rnnlm.data.sources import Prose, ProseSettings, RawCorpus, Source
from rnnlm.errors import UserError

TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class TableFile(Source, Prose):
    """A CSV, TSV or Parquet file (format from the extension); each row's text is split into sentences.
    Rows (not sentences) are carved into val/test, so one document never straddles two splits."""

    name = "csv"
    prose_defaults = ProseSettings(sentence_split=True)

    def __init__(self, path: str | None = None, text_column: str = "text", **prose: Any) -> None:
        """`prose`: ProseSettings' keys (sentence_split, default true here, language, lowercase, val_fraction,
        test_fraction, seed)."""
        Prose.__init__(self, **prose)
        self.fractions = {"val": self.prose.val_fraction, "test": self.prose.test_fraction}
        check_fractions(self.fractions)
        self.path = check_file(path, "data.path", "a .csv, .tsv or .parquet file")
        self.format = TABLE_FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise UserError(
                f"data.path={path} has an unknown extension {self.path.suffix!r}: use a .csv, .tsv or .parquet file."
            )
        self.text_column = text_column

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

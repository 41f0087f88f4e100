"""Reading user files: clear errors for bad paths, lenient UTF-8, and sentence splitting of raw prose."""

from __future__ import annotations

import codecs
import logging
import re
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path

import numpy as np

from rnnlm import checks
from rnnlm.errors import UserError

log = logging.getLogger(__name__)

REPLACEMENT = "\ufffd"
# A blank line (possibly holding spaces) ends a paragraph; single newlines inside one are hard wraps.
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\r\f\v]*\n")


@dataclass
class ReadNotes:
    """What reading changed about the input, for the data summary."""

    undecodable_lines: dict[str, int] = field(default_factory=dict)  # config key -> lines with bad bytes


def check_file(path: str | Path | None, key: str, what: str = "a text file") -> Path:
    """The path as a Path, or one sentence saying what is wrong with it."""
    if path is None or str(path).strip() == "":
        raise UserError(f"{key} is not set: give {key}=PATH to {what}.")
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{key}={path} does not exist: point {key} at {what}.")
    if p.is_dir():
        raise UserError(f"{key}={path} is a directory: point {key} at {what}, not a folder.")
    return p


def decode(data: bytes, key: str, notes: ReadNotes) -> str:
    """UTF-8 text; undecodable bytes become U+FFFD and the number of lines they hit is reported."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="replace")
    # Lines that held U+FFFD before decoding are rare; counting all lines with one is close enough.
    bad = sum(1 for line in text.split("\n") if REPLACEMENT in line)
    notes.undecodable_lines[key] = notes.undecodable_lines.get(key, 0) + bad
    return text


def read_text(path: str | Path, key: str, notes: ReadNotes) -> str:
    p = check_file(path, key)
    data = p.read_bytes()
    if not data:
        raise UserError(f"{key}={path} is empty: give a file with some text in it.")
    text = decode(data, key, notes)
    if not text.strip():
        raise UserError(f"{key}={path} holds only blank lines: give a file with some text in it.")
    return text


def nonblank_lines(text: str) -> list[str]:
    return [line for line in (raw.strip() for raw in text.split("\n")) if line]


class LineFile:
    """The lines of a text file, stripped, read a block at a time: what `nonblank_lines(read_text(...))` gives
    (or, `keep_blank`, every line), without the file in memory. Iterable again for each pass (the tokenizer's
    count, then the encoding); the undecodable lines are counted into `notes` on the first pass."""

    BLOCK_BYTES = 1 << 22  # 4 MB read, decoded and split at a time

    def __init__(self, path: str | Path, key: str, notes: ReadNotes, keep_blank: bool = False, lowercase=False):
        self.path, self.key, self.notes = check_file(path, key), key, notes
        self.keep_blank, self.lowercase, self._counted = keep_blank, lowercase, False
        if self.path.stat().st_size == 0:
            raise UserError(f"{key}={path} is empty: give a file with some text in it.")
        self.empty = f"{key}={path} holds only blank lines: give a file with some text in it."

    @property
    def size(self) -> int:
        return self.path.stat().st_size

    def __iter__(self):
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        bad, rest = 0, ""
        with open(self.path, "rb") as f:
            while True:
                data = f.read(self.BLOCK_BYTES)
                text = rest + decoder.decode(data, final=not data)
                lines = text.split("\n")
                rest = lines.pop() if data else ""  # an unfinished last line waits for the next block
                if not data and lines == [""] and not rest:
                    lines = []  # the file ended with a newline: no line after it
                bad += sum(REPLACEMENT in line for line in lines) if REPLACEMENT in text else 0
                for line in lines:
                    line = line.strip()
                    if line or self.keep_blank:
                        yield line.lower() if self.lowercase else line
                if not data:
                    break
        if bad and not self._counted:
            self.notes.undecodable_lines[self.key] = self.notes.undecodable_lines.get(self.key, 0) + bad
        self._counted = True


class SentenceSplitter:
    """Raw prose -> sentences with `sentencex` (rule-based, offline, ~40 MB/s): paragraphs are the
    blocks between blank lines, their hard-wrapped lines are joined before splitting."""

    def __init__(self, language: str = "en") -> None:
        from sentencex import segment

        self.language, self._segment = language, segment

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for para in _PARAGRAPH_BREAK.split(text):
            para = " ".join(para.split())
            if para:
                out.extend(s for s in (s.strip() for s in self._segment(self.language, para)) if s)
        return out


def sentences_of(text: str, split: bool, language: str = "en") -> list[str]:
    """One sentence per non-blank line, or the sentences of raw prose."""
    return SentenceSplitter(language)(text) if split else nonblank_lines(text)


def check_fractions(fractions: dict[str, float]) -> None:
    """The shares of the training data carved out as val/test (checked when a source is made)."""
    for split, frac in fractions.items():
        checks.number(f"data.{split}_fraction", frac, 0.0, 1.0)


class CarvedLines:
    """The lines of a LineFile that carving gave one split (`code`), in file order, read a block at a time."""

    def __init__(self, lines: LineFile, codes: np.ndarray, code: int) -> None:
        self.lines, self.keep, self.empty = lines, (codes == code).tobytes(), lines.empty

    def __iter__(self):
        return compress(self.lines, self.keep)


def carve_lines(lines: LineFile, fractions: dict[str, float], seed: int, what: str):
    """`carve` for a file read a block at a time: the same splits for the same seed (one pass counts the
    lines; each split then reads the file for its own lines), and only a byte per line in memory."""
    n = sum(1 for _ in lines)
    if n == 0:
        raise UserError(lines.empty)
    codes = np.zeros(n, dtype=np.int8)
    carved = carved_indexes(n, fractions, seed, what)
    for i, taken in enumerate(carved.values(), start=1):
        codes[taken] = i
    return CarvedLines(lines, codes, 0), {split: CarvedLines(lines, codes, i) for i, split in enumerate(carved, 1)}


def carve(items: list, fractions: dict[str, float], seed: int, what: str) -> tuple[list, dict[str, list]]:
    """Take deterministic random fractions of `items` (sentences, rows, reviews) out as new splits.

    Returns (rest, {split: items}); each part keeps the input order. `what` names the items in errors,
    e.g. "sentences in data.train_path".
    """
    carved = carved_indexes(len(items), fractions, seed, what)
    taken = np.zeros(len(items), dtype=bool)
    for indexes in carved.values():
        taken[indexes] = True
    rest = [items[i] for i in np.flatnonzero(~taken)]
    return rest, {split: [items[i] for i in indexes] for split, indexes in carved.items()}


def carved_indexes(n: int, fractions: dict[str, float], seed: int, what: str) -> dict[str, np.ndarray]:
    """Each carved split's item positions, sorted: a deterministic random share of n items per split."""
    counts = {}
    for split, frac in fractions.items():
        counts[split] = int(round(n * frac))
        if counts[split] == 0:
            raise UserError(
                f"data.{split}_fraction={frac} leaves the {split} split empty ({n} {what}): "
                f"raise data.{split}_fraction or give data.{split}_path."
            )
    if sum(counts.values()) >= n:
        taken = ", ".join(f"data.{s}_fraction={f}" for s, f in fractions.items())
        raise UserError(f"{taken} leave nothing to train on out of {n} {what}: lower them.")
    order = np.random.default_rng(seed).permutation(n)
    carved, start = {}, 0
    for split, k in counts.items():
        carved[split] = np.sort(order[start : start + k])
        start += k
    return carved


def read_lines(path: str | Path, key: str) -> list[str]:
    """The non-blank lines of a UTF-8 text file (prompts, sentences to score)."""
    return nonblank_lines(read_text(path, key, ReadNotes()))

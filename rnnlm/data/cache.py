"""The encoded corpus on disk: one folder per (source fingerprint, encoding settings), written atomically.

    <cache_dir>/<source>-<key>/tokenizer.json
                               {train,val,test}.tokens.bin   raw little-endian int32, sentences back to back
                               {train,val,test}.offsets.npy  int64
                               {split}.stream.bin            stream mode's stream (sentences + <eos>), made once
                               meta.json                     what built it, token counts, the summary; written last

The folder is filled under a temporary name and renamed into place in one step, so a run killed while
writing leaves at most a `.tmp-*` folder that no later run reads. A reload checks every file without reading
a token (sizes, the offsets' ends and order, the meta's shape, that the tokenizer parses), so a damaged entry
is ignored with one warning and rebuilt, never a crash or a silently wrong corpus. Tokens are raw files so
that a large corpus can be encoded straight into them and read back memory-mapped: a reload copies nothing,
and every process (every DDP rank) shares the same pages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from rnnlm.data.corpus import EncodedSplit, map_tokens
from rnnlm.data.tokenizer import tokenizer_from_json
from rnnlm.files import unfinished

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the layout or the encoding code changes what a key would produce (2: raw token files)


def cache_key(fingerprint: dict[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class Damaged(ValueError):
    """What is wrong with a cache folder's files, for the warning."""


# What a damaged entry raises while read: a missing or cut file (OSError, EOFError), bytes that are not what
# they should be (ValueError: json's and UTF-8's errors are ValueErrors; pickle's for an .npy that is not
# one), JSON of the wrong shape (KeyError, TypeError). Each ends in load's one warning, with its type.
DAMAGE = (OSError, EOFError, ValueError, KeyError, TypeError, pickle.UnpicklingError)
FILTERS = ("kept", "too_short", "too_long")


def load(folder: Path) -> tuple[dict[str, EncodedSplit], str, dict[str, Any], Tokenizer] | None:
    """(splits, tokenizer JSON, meta, the tokenizer parsed) of a complete cache folder, its tokens memory-mapped,
    or None if there is none; a damaged one is None too, with one warning (the caller rebuilds it, and `finish`
    replaces it)."""
    if not folder.exists():
        return None
    try:
        return _read(folder)
    except DAMAGE as err:
        reason = err if isinstance(err, Damaged) else f"{type(err).__name__}: {err}"
        log.warning("ignoring the damaged corpus cache %s (%s); rebuilding it", folder, reason)
        return None


def _read(folder: Path) -> tuple[dict[str, EncodedSplit], str, dict[str, Any], Tokenizer]:
    """load's reading; raises what is damaged. No token is read, so a 100M-token reload stays fast: the token
    files are checked by size, the offsets (8 bytes a sentence) by their ends and order, and the meta by its
    shape, the one summary.describe reads."""
    meta = _parse(folder / "meta.json", lambda p: json.loads(p.read_text()))
    names = sorted(p.name.removesuffix(".tokens.bin") for p in folder.glob("*.tokens.bin"))
    counts = meta.get("tokens") if isinstance(meta, dict) else None
    if not isinstance(counts, dict) or sorted(counts) != names:
        listed = sorted(counts) if isinstance(counts, dict) else "no token counts"
        raise Damaged(f"token files of the splits {names}, and meta.json lists {listed}")
    if not all(_counts(meta.get(key), names) for key in ("tokens", "unk")):
        raise Damaged(f"meta.json does not hold a token and <unk> count for each of the splits {names}")
    filters = meta.get("filters")
    if not (isinstance(filters, dict) and all(_counts(filters.get(s), FILTERS, subset=True) for s in names)):
        raise Damaged(f"meta.json does not hold the filter counts of the splits {names}")
    if not {"min_len", "max_len", "tokenizer"} <= meta.keys() or "train" not in names:
        raise Damaged("meta.json lacks the settings or the train split")
    tokenizer_json = _parse(folder / "tokenizer.json", Path.read_text)
    try:  # parsed once, here: 6 ms for a 10k vocabulary, 0.5 s for WikiText-103's 267k
        tokenizer = tokenizer_from_json(tokenizer_json)
    except Exception as err:  # the tokenizers library raises a bare Exception for JSON it cannot read
        raise Damaged(f"tokenizer.json: {err}") from err
    splits = {}
    for split, count in meta.pop("tokens").items():
        path = folder / f"{split}.tokens.bin"
        if path.stat().st_size != 4 * count:
            raise Damaged(f"{path.name} holds {path.stat().st_size} bytes, not {count} tokens")
        offsets = _parse(folder / f"{split}.offsets.npy", np.load)
        sentences = filters[split]["kept"]
        if not (offsets.dtype == np.int64 and offsets.shape == (sentences + 1,) and offsets[0] == 0
                and offsets[-1] == count and not np.any(offsets[1:] < offsets[:-1])):  # fmt: skip
            raise Damaged(f"{split}.offsets.npy are not the offsets of {sentences} sentences in {count} tokens")
        splits[split] = EncodedSplit(map_tokens(path, count), offsets)
    return splits, tokenizer_json, meta, tokenizer


def _parse(path: Path, read: Callable[[Path], Any]) -> Any:
    """read(path), a missing, empty, cut or garbled file a Damaged naming the file."""
    try:
        return read(path)
    except DAMAGE as err:
        raise Damaged(f"{path.name}: {type(err).__name__}: {err}") from err


def _counts(value: Any, keys, subset: bool = False) -> bool:
    """`value` is a dict of counts (ints >= 0) with exactly `keys` (or at least them, with `subset`)."""
    if not isinstance(value, dict) or not (set(keys) <= value.keys() if subset else sorted(value) == list(keys)):
        return False
    return all(type(value[k]) is int and value[k] >= 0 for k in keys)


@contextlib.contextmanager
def building(folder: Path) -> Iterator[Path]:
    """An empty temporary folder beside `folder` to encode into, for the block (`finish` renames it into
    place); whatever is left of it afterwards (the block failed, or the process is stopped) is removed."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    with unfinished(tmp):
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def finish(tmp: Path, folder: Path, splits: dict[str, EncodedSplit], tokenizer_json: str, meta: dict[str, Any]) -> None:
    """Complete `tmp` (tokens not encoded into it yet, offsets, tokenizer, meta last) and rename it to `folder`
    in one step; if another process finished the same key first, keep theirs."""
    for split, data in splits.items():
        path = tmp / f"{split}.tokens.bin"
        if not path.exists():
            with open(path, "wb") as f:
                f.write(np.ascontiguousarray(data.tokens, dtype="<i4").tobytes())
        np.save(tmp / f"{split}.offsets.npy", data.offsets)
    (tmp / "tokenizer.json").write_text(tokenizer_json)
    tokens = {split: len(data.tokens) for split, data in splits.items()}
    (tmp / "meta.json").write_text(json.dumps({**meta, "tokens": tokens}, indent=1, default=str))
    try:
        os.rename(tmp, folder)  # atomic; fails if the folder exists
    except OSError:
        if _sound(folder):
            return
        shutil.rmtree(folder, ignore_errors=True)  # a damaged entry (load warned): replace it
        try:
            os.rename(tmp, folder)
        except OSError:
            if not _sound(folder):  # not another process's sound entry, placed meanwhile
                raise


def _sound(folder: Path) -> bool:
    """Whether `folder` is a complete entry; quiet, as load already warned about a damaged one."""
    try:
        _read(folder)
    except DAMAGE:
        return False
    return True


def stream(folder: Path, split: str, make: Callable[[], np.ndarray], length: int) -> np.ndarray:
    """Stream mode's stream of a split, made once per cache folder and memory-mapped after (so DDP ranks and
    later runs share it); written under a temporary name and renamed, so a reader never sees half of it.
    `length` is what make() returns, known without it (tokens + one <eos> a sentence): a file of another
    size (cut, or damaged) would silently shift every window, so it is warned about and made again."""
    path = folder / f"{split}.stream.bin"
    size = path.stat().st_size if path.exists() else None
    if size is not None and size != 4 * length:
        log.warning("ignoring the damaged stream %s of the corpus cache %s (%d bytes, not the %d of %d tokens); "
                    "making it again", path.name, folder, size, 4 * length, length)  # fmt: skip
    if size != 4 * length:
        data = make()
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=folder)
        with unfinished(Path(tmp)):
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(np.ascontiguousarray(data, dtype="<i4").tobytes())
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
    return map_tokens(path, length)

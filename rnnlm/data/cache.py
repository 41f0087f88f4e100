"""The encoded corpus on disk: one folder per (source fingerprint, encoding settings), written atomically.

    <cache_dir>/<source>-<key>/tokenizer.json
                               {train,val,test}.tokens.bin   raw little-endian int32, sentences back to back
                               {train,val,test}.offsets.npy  int64
                               {split}.stream.bin            stream mode's stream (sentences + <eos>), made once
                               meta.json                     what built it, token counts, the summary; written last

The folder is filled under a temporary name and renamed into place in one step, so a run killed while
writing leaves at most a `.tmp-*` folder that no later run reads; meta.json must parse for a hit. Tokens are
raw files so that a large corpus can be encoded straight into them and read back memory-mapped: a reload
copies nothing, and every process (every DDP rank) shares the same pages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rnnlm.data.corpus import EncodedSplit, map_tokens
from rnnlm.files import unfinished

log = logging.getLogger(__name__)

FORMAT = 2  # bump when the layout or the encoding code changes what a key would produce (2: raw token files)


def cache_key(fingerprint: dict[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(folder: Path) -> tuple[dict[str, EncodedSplit], str, dict[str, Any]] | None:
    """(splits, tokenizer JSON, meta) of a complete cache folder, its tokens memory-mapped, or None if there is none."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        tokenizer_json = (folder / "tokenizer.json").read_text()
        splits = {}
        for split, count in meta.pop("tokens").items():
            path = folder / f"{split}.tokens.bin"
            if path.stat().st_size != 4 * count:
                raise ValueError(f"{path.name} holds {path.stat().st_size} bytes, not {count} tokens")
            splits[split] = EncodedSplit(map_tokens(path, count), np.load(folder / f"{split}.offsets.npy"))
    except (OSError, ValueError, KeyError) as err:
        if (folder / "meta.json").exists():
            log.warning("ignoring the damaged corpus cache %s (%s); rebuilding it", folder, err)
        return None
    return splits, tokenizer_json, meta


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
        if load(folder) is None:  # a damaged leftover: replace it
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)


def stream(folder: Path, split: str, make: Callable[[], np.ndarray]) -> np.ndarray:
    """Stream mode's stream of a split, made once per cache folder and memory-mapped after (so DDP ranks and
    later runs share it); written under a temporary name and renamed, so a reader never sees half of it."""
    path = folder / f"{split}.stream.bin"
    if not path.exists():
        data = make()
        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=folder)
        with unfinished(Path(tmp)):
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(np.ascontiguousarray(data, dtype="<i4").tobytes())
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
    return map_tokens(path, path.stat().st_size // 4)

"""The encoded corpus on disk: one folder per (source fingerprint, encoding settings), written atomically.

    <cache_dir>/<source>-<key>/tokenizer.json
                               {train,val,test}.tokens.npy   int32, sentences back to back
                               {train,val,test}.offsets.npy  int64
                               meta.json                     what built it + the data summary; written last

The folder is filled under a temporary name and renamed into place in one step, so a run killed while
writing leaves at most a `.tmp-*` folder that no later run reads; meta.json must parse for a hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rnnlm.data.corpus import EncodedSplit
from rnnlm.files import unfinished

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout or the encoding code changes what a key would produce


def cache_key(fingerprint: dict[str, Any]) -> str:
    text = json.dumps({"format": FORMAT, **fingerprint}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load(folder: Path) -> tuple[dict[str, EncodedSplit], str, dict[str, Any]] | None:
    """(splits, tokenizer JSON, meta) of a complete cache folder, or None if there is none."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        tokenizer_json = (folder / "tokenizer.json").read_text()
        splits = {
            s: EncodedSplit(np.load(folder / f"{s}.tokens.npy"), np.load(folder / f"{s}.offsets.npy"))
            for s in meta.pop("splits")
        }
    except (OSError, ValueError, KeyError) as err:
        if (folder / "meta.json").exists():
            log.warning("ignoring the damaged corpus cache %s (%s); rebuilding it", folder, err)
        return None
    return splits, tokenizer_json, meta


def save(folder: Path, splits: dict[str, EncodedSplit], tokenizer_json: str, meta: dict[str, Any]) -> None:
    """Write the folder atomically; if another process finished the same key first, keep theirs."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    with unfinished(tmp):
        try:
            (tmp / "tokenizer.json").write_text(tokenizer_json)
            for split, data in splits.items():
                np.save(tmp / f"{split}.tokens.npy", data.tokens)
                np.save(tmp / f"{split}.offsets.npy", data.offsets)
            (tmp / "meta.json").write_text(json.dumps({**meta, "splits": list(splits)}, indent=1, default=str))
            try:
                os.rename(tmp, folder)  # atomic; fails if the folder exists
            except OSError:
                if load(folder) is None:  # a damaged leftover: replace it
                    shutil.rmtree(folder, ignore_errors=True)
                    os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

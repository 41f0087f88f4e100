"""Reading checkpoints with one clear sentence when the file is not what the user thinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rnnlm.errors import UserError


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"ckpt_path={path} is not a file: give the path of a .ckpt written by rnnlm.")
    try:
        # mmap: only the hyperparameters are needed here; tensors stay on disk until touched.
        ckpt = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise UserError(
            f"ckpt_path={path} could not be read as a checkpoint ({type(err).__name__}): "
            "is the file complete and written by rnnlm?"
        ) from err
    if "tokenizer_json" not in ckpt.get("hyper_parameters", {}):
        raise UserError(f"ckpt_path={path} was not written by rnnlm (it carries no tokenizer): use an rnnlm .ckpt.")
    return ckpt

"""Checkpoints: read with one clear sentence when the file is not what the user thinks, written atomically,
and found by name (`ckpt_path=last`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from rnnlm.errors import UserError
from rnnlm.files import atomic_open


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


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the same folder, flushed to disk, then renamed over the
    target: a kill or a full disk mid-write leaves the previous checkpoint intact, never half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        with atomic_open(path, "wb", fsync=True) as f:
            torch.save(checkpoint, f)


def resolve_ckpt_path(ckpt_path: str | None, runs_root: str | Path, output_dir: str | Path | None = None) -> str | None:
    """The checkpoint a run resumes from.

    `last`: the newest checkpoints/last.ckpt of any earlier run under `runs_root` (outputs/<task_name>).
    None: the newest checkpoint already in this run's own folder, if any: what Lightning's SLURM
    auto-requeue saved (hpc_ckpt_N.ckpt) or a SIGTERM after it (checkpoints/last.ckpt), so a requeued job
    started again in the same folder resumes, with its own vocabulary. Anything else: the path itself.
    """
    if ckpt_path == "last":
        candidates = [p for p in Path(runs_root).glob("**/checkpoints/last.ckpt") if p.is_file()]
        if not candidates:
            raise UserError(
                f"ckpt_path=last found no checkpoints/last.ckpt under {runs_root}: give the checkpoint's path instead."
            )
        return str(max(candidates, key=lambda p: p.stat().st_mtime).resolve())
    if ckpt_path is None and output_dir is not None:
        own = Path(output_dir)
        found = [p for p in [*own.glob("hpc_ckpt_*.ckpt"), own / "checkpoints" / "last.ckpt"] if p.is_file()]
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    return ckpt_path

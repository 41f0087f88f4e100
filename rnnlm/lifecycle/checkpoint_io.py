"""Checkpoints as training writes and finds them: written atomically, and found by name (`ckpt_path=last`).
Reading one is rnnlm.models.trained.read_checkpoint."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from rnnlm.errors import UserError
from rnnlm.files import WriteError, atomic_open


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the same folder, flushed to disk, then renamed over the
    target: a kill or a full disk mid-write leaves the previous checkpoint intact, never half a file."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        # Serialised in memory first: torch.save reports a failed write to a file as a bare RuntimeError,
        # while a plain write of the bytes fails with the operating system's reason (full disk, ...).
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            with atomic_open(path, "wb", fsync=True) as f:
                f.write(buffer.getbuffer())
        except WriteError as err:
            kept = _newest_checkpoint(Path(path).parent)
            raise UserError(
                f"the checkpoint {path} could not be written: {err.cause}; free space there or set "
                "callbacks.model_checkpoint.dirpath to another disk, then resume from "
                + (f"{kept}, the last good checkpoint (kept intact)." if kept else "scratch: no checkpoint was kept.")
            ) from err


def _newest_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder` (temporary files end in .tmp, not .ckpt)."""
    found = [p for p in folder.glob("*.ckpt") if p.is_file()] if folder.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


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


def what_is_kept(trainer) -> str:
    """Where a failed run can be resumed from, said for an error message."""
    ckpt = trainer.checkpoint_callback if trainer is not None else None
    kept = (ckpt.last_model_path or ckpt.best_model_path) if ckpt is not None else ""
    if not kept:
        return "no checkpoint had been saved yet"
    return f"the last good checkpoint is {kept} (resume from it with ckpt_path={kept})"

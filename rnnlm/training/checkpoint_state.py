"""What rnnlm keeps in a checkpoint beside Lightning's own: the skipped-step count, the weight average (as the
weights, the raw ones beside), each rank's carried stream state; and what older checkpoints lack, filled in
(the migration), so every checkpoint an earlier main wrote still loads and resumes (tests/test_legacy.py)."""

from __future__ import annotations

from typing import Any

from rnnlm.lightning_api import attached_trainer


def save_extras(module, checkpoint: dict[str, Any]) -> None:
    checkpoint["rnnlm_skipped_steps"] = module.skipped_steps
    if module.averaging.kind != "none":
        module.averaging.save(checkpoint, module.net)
    hidden = module.stream.gathered(module)  # every rank takes part; rank 0 writes the file
    if hidden is not None:
        checkpoint["rnnlm_stream_hidden"] = hidden


def load_extras(module, checkpoint: dict[str, Any]) -> None:
    """Runs before the state dict is loaded: a resume puts the raw weights back in it here."""
    module.skipped_steps = int(checkpoint.get("rnnlm_skipped_steps", 0))
    module.stream.restored = checkpoint.get("rnnlm_stream_hidden")
    trainer = attached_trainer(module)
    module.averaging.load(checkpoint, module.net, resuming=trainer is not None and trainer.state.fn == "fit")
    state = checkpoint.get("state_dict", {})
    for key, value in module.train_nll.state_dict().items():  # checkpoints from before these sums were kept
        state.setdefault(f"train_nll.{key}", value)

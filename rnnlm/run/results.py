"""What a finished run leaves: results.json for the sweep report, and the one-line summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rnnlm.cli import plain
from rnnlm.files import atomic_open


def overrides() -> list[str]:
    """This run's command-line overrides (a sweep point's own values), when Hydra started it."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def write_results(path: Path, cfg: DictConfig, history: list[dict], metrics: dict, **extra: Any) -> None:
    """results.json: one run's numbers for the sweep report (rnnlm.sweeps.report), written atomically."""
    speeds = [h["train/tokens_per_sec"] for h in history if "train/tokens_per_sec" in h]
    results = {
        "overrides": overrides(),
        "cell": cfg.model.cell,
        "hidden_size": plain(cfg.model.hidden_size),  # an int, or a list of one size per layer
        "num_layers": cfg.model.get("num_layers"),
        "level": "stream" if cfg.data.get("mode") == "stream" else "sentence",  # how its perplexities were read
        "metrics": metrics,
        "epochs": len(history),
        "tokens_per_sec": sum(speeds) / len(speeds) if speeds else None,
        "history": history,
        **extra,
    }
    with atomic_open(path) as f:
        f.write(json.dumps(results, indent=2) + "\n")


def summary_line(metrics: dict[str, float], checkpoint: str | None, val_label: str = "best val/ppl") -> str:
    parts = [f"{val_label} {metrics['val/ppl']:.2f}"] if "val/ppl" in metrics else []
    if "test/ppl" in metrics:
        parts.append(f"test/ppl {metrics['test/ppl']:.2f}")
    parts += [f"{k} {metrics[k]:.3f}" for k in ("val/bpc", "test/bpc") if k in metrics]  # character tokenizers
    parts.append(f"checkpoint {checkpoint or '(none saved)'}")
    return " | ".join(parts)

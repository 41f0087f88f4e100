"""bf16 where the hardware has it, fp32 where it does not.

On a CPU without bf16 instructions (AVX-512 BF16 or AMX; e.g. an AVX2-only machine) oneDNN has no bf16 LSTM
kernel: under autocast `aten::lstm` stops with "could not create a primitive descriptor", and every other
bf16 matrix product is emulated (a 640x650 by 650x2600 product measured 26x slower than fp32 on an AVX2
EPYC). A recipe that asks for bf16-mixed (ptb_cpu_18min) still has to run there: it trains in 32-true
instead, with one warning.
"""

from __future__ import annotations

import warnings

import torch
from omegaconf import DictConfig, open_dict


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (the check torch itself uses for its bf16 kernels)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN has no bf16 CPU kernels either
        return False


def bf16_usable(device: torch.device | str) -> bool:
    """bf16 autocast on `device` runs real bf16 kernels (always on CUDA, on a CPU only with bf16 instructions)."""
    return torch.device(device).type != "cpu" or cpu_has_bf16()


def fallback_sentence(setting: str) -> str:
    capability = torch.backends.cpu.get_cpu_capability()
    return (f"{setting} needs a CPU with bf16 instructions (AVX-512 BF16 or AMX) and this one has {capability}: "
            "running in fp32 instead (the same model, fp32 speed).")  # fmt: skip


def _runs_on_cpu(trainer_cfg: DictConfig) -> bool:
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def settle_precision(cfg: DictConfig) -> None:
    """trainer.precision=bf16-* on a CPU without bf16 becomes 32-true (the saved config says what ran)."""
    precision = str(cfg.trainer.get("precision", "32-true"))
    if "bf16" not in precision or not _runs_on_cpu(cfg.trainer) or cpu_has_bf16():
        return
    warnings.warn(fallback_sentence(f"trainer.precision={precision}"), stacklevel=2)
    with open_dict(cfg):
        cfg.trainer.precision = "32-true"

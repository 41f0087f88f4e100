"""bf16 where the hardware runs it natively, fp32 where it would only be emulated or not run at all.

The choice reads the hardware's flags, never a timing probe (a noisy probe could pick differently on two DDP
ranks, or across a resume). Three kinds of CPU:

- native bf16 (AVX-512 BF16 or AMX: recent EPYCs, Sapphire Rapids Xeons): bf16 runs, ~1.4-2x fp32;
- AVX-512 without BF16 (Skylake, Cascade Lake, Ice Lake server CPUs): oneDNN reports bf16 as supported but
  emulates it: bf16 training ran at 0.41x fp32 (2,768 vs 6,739 tokens/s, ptb_cpu_18min on an Ice Lake Xeon);
- AVX2 only: oneDNN has no bf16 LSTM at all (`aten::lstm` stops with "could not create a primitive
  descriptor") and every other bf16 product is emulated (26x slower than fp32 on an AVX2 EPYC).

GPUs before Ampere (compute capability < 8.0) emulate bf16 too. Where bf16 would not be native, a run that
asks for it (trainer.precision=bf16-*, generate.py's bf16=true) runs in fp32 with one warning;
`allow_emulated_bf16=true` keeps the emulation where one exists (to check bf16 numerics, not for speed).
"""

from __future__ import annotations

import warnings

import torch
from omegaconf import DictConfig, open_dict

OPT_IN = "set allow_emulated_bf16=true to run the emulation anyway"


def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 instructions (AVX-512 BF16 or AMX), so that oneDNN's bf16 kernels are native."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # a torch without these probes: take the safe path
        return False


def cpu_emulates_bf16() -> bool:
    """Whether oneDNN can run bf16 here at all (true on any AVX-512 CPU, natively or emulated)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN has no bf16 CPU kernels either
        return False


def cpu_bf16_class() -> str:
    """This CPU's class for bf16, as benchmarks and notes name it."""
    capability = torch.backends.cpu.get_cpu_capability()
    if cpu_has_bf16():
        return f"bf16 native ({capability}, AVX-512 BF16 or AMX)"
    if cpu_emulates_bf16():
        return f"bf16 emulated ({capability} without AVX-512 BF16 or AMX)"
    return f"no bf16 ({capability})"


def cuda_has_bf16() -> bool:
    """Whether the current GPU runs bf16 natively (Ampere, compute capability 8.0, and later)."""
    return torch.cuda.is_bf16_supported(including_emulation=False)


def _cuda_name() -> str:
    major, minor = torch.cuda.get_device_capability()
    return f"{torch.cuda.get_device_name()}, compute capability {major}.{minor}"


def bf16_fallback(device: torch.device | str, setting: str, allow_emulated: bool = False) -> str | None:
    """None where bf16 may run on `device`, else the one sentence that says why it runs in fp32 instead."""
    kind = torch.device(device).type
    if kind == "cpu":
        if cpu_has_bf16() or (allow_emulated and cpu_emulates_bf16()):
            return None
        capability = torch.backends.cpu.get_cpu_capability()
        if cpu_emulates_bf16():
            return (f"{setting} would be emulated on this CPU ({capability} without AVX-512 BF16 or AMX: about 0.4x "
                    f"fp32's speed): running in fp32 instead (the same model, fp32 speed); {OPT_IN}.")  # fmt: skip
        return (f"{setting} needs a CPU with bf16 instructions (AVX-512 BF16 or AMX) and this one has {capability}: "
                "running in fp32 instead (the same model, fp32 speed).")  # fmt: skip
    if kind == "cuda" and not (cuda_has_bf16() or allow_emulated):
        return (f"{setting} would be emulated on this GPU ({_cuda_name()}; native bf16 needs 8.0 or later): running "
                f"in fp32 instead (16-mixed is this GPU's fast precision); {OPT_IN}.")  # fmt: skip
    return None


def bf16_usable(device: torch.device | str, allow_emulated: bool = False) -> bool:
    """bf16 autocast on `device` is native (or emulated, where `allow_emulated` and an emulation exists)."""
    return bf16_fallback(device, "bf16", allow_emulated) is None


def _device(trainer_cfg: DictConfig) -> str | None:
    """Where the run's Trainer computes: cpu, cuda, or None for an accelerator this check does not know."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "cuda"
    return None  # e.g. a GPU config composed on a machine without one: Lightning says what is missing


def settle_precision(cfg: DictConfig) -> None:
    """trainer.precision=bf16-* where bf16 would not be native becomes 32-true (the saved config says what ran)."""
    precision = str(cfg.trainer.get("precision", "32-true"))
    device = _device(cfg.trainer)
    if "bf16" not in precision or device is None:
        return
    sentence = bf16_fallback(device, f"trainer.precision={precision}", bool(cfg.get("allow_emulated_bf16", False)))
    if sentence is None:
        return
    warnings.warn(sentence, stacklevel=2)
    with open_dict(cfg):
        cfg.trainer.precision = "32-true"

"""module.compile=true: the window's forward and loss through torch.compile.

Inductor builds CPU kernels with a C++ compiler (g++ or clang++, or $CXX); GPU kernels with Triton, which
comes with CUDA builds of torch. Without a compiler the run goes on uncompiled, with one warning: a missing
compiler should cost speed, not the run. The recurrent layers stay the library's fused kernel either way
(dynamo hands nn.LSTM/GRU/RNN calls back to eager), so what compiling can fuse is the rest: the embedding and
its dropouts, AR/TAR and the output layer with its loss.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

import torch

log = logging.getLogger("rnnlm")
COMPILERS = ("g++", "c++", "clang++")


def cpp_compiler() -> str | None:
    """The C++ compiler inductor would use, or None."""
    named = os.environ.get("CXX")
    for name in ([named] if named else []) + list(COMPILERS):
        if shutil.which(name):
            return name
    return None


def maybe_compile(fn: Callable, enabled: bool, device: str = "cpu") -> Callable:
    if not enabled:
        return fn
    if device == "cpu" and cpp_compiler() is None:
        log.warning(
            "module.compile=true needs a C++ compiler for torch.compile's CPU kernels (g++ or clang++ on PATH, or "
            "$CXX) and none was found: training uncompiled; install one (e.g. apt-get install g++) to compile."
        )
        return fn
    return torch.compile(fn, dynamic=None)

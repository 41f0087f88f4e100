"""rnnlm: recurrent language-model experiments with Lightning and Hydra.

The public names are imported on first use (PEP 562), so `import rnnlm` alone stays light: Hydra imports
the package through the launcher plugins in hydra_plugins/ at every start, before any run needs torch.

    from rnnlm import LanguageModel, load_model, Generator, GenerationConfig, score, train, evaluate
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# name -> "module:attribute", where each public name lives.
_PUBLIC = {
    "LanguageModel": "rnnlm.training.lightning_module:LanguageModel",
    "load_model": "rnnlm.models.trained:load_model",
    "Generator": "rnnlm.generation.search:Generator",
    "GenerationConfig": "rnnlm.generation.search:GenerationConfig",
    "score": "rnnlm.generation.scoring:score",
    "train": "rnnlm.run.train:train",
    "evaluate": "rnnlm.run.evaluate:evaluate",
    "RNNLanguageModel": "rnnlm.models.rnn_lm:RNNLanguageModel",
    "UserError": "rnnlm.errors:UserError",
}

__all__ = [
    "GenerationConfig",
    "Generator",
    "LanguageModel",
    "RNNLanguageModel",
    "UserError",
    "__version__",
    "evaluate",
    "load_model",
    "score",
    "train",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ imports them
    from rnnlm.errors import UserError
    from rnnlm.generation.scoring import score
    from rnnlm.generation.search import GenerationConfig, Generator
    from rnnlm.models.rnn_lm import RNNLanguageModel
    from rnnlm.models.trained import load_model
    from rnnlm.run.evaluate import evaluate
    from rnnlm.run.train import train
    from rnnlm.training.lightning_module import LanguageModel


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attribute = _PUBLIC[name].partition(":")
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # imported once: later look-ups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

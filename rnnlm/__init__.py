"""rnnlm: recurrent language-model experiments with Lightning and Hydra."""

from rnnlm.errors import UserError

__version__ = "0.1.0"
__all__ = ["UserError", "__version__"]

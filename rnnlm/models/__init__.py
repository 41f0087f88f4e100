"""The networks, plain nn.Modules that know nothing of Lightning: the language model around a cell (rnn_lm),
its settings declared once (settings), the widths that meet a parameter count (budget), the cells by name
(cells/: the library's rnn, gru and lstm, the QRNN, the Mogrifier LSTM, minGRU and minLSTM, the seed
notebook's Elman cell), AWD-LSTM's regularisers (regularisers), the output layer fused with its loss (loss),
the adaptive softmax (output), and a trained network loaded from its checkpoint with its tokenizer (trained)."""

from rnnlm.moved import install

install()  # rnnlm.models.vanilla and rnnlm.models.rnn_stack moved into cells/

from rnnlm.models.cells import REGISTRY, network_settings, register  # noqa: E402
from rnnlm.models.loss import linear_cross_entropy  # noqa: E402
from rnnlm.models.rnn_lm import RNNLanguageModel  # noqa: E402
from rnnlm.models.trained import TrainedModel, load_model, read_checkpoint  # noqa: E402

__all__ = [
    "REGISTRY",
    "RNNLanguageModel",
    "TrainedModel",
    "linear_cross_entropy",
    "load_model",
    "network_settings",
    "read_checkpoint",
    "register",
]

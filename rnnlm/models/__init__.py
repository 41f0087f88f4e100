"""The networks, plain nn.Modules that know nothing of Lightning: the RNN/GRU/LSTM language model
(rnn_lm), the seed notebook's Elman cell (vanilla), the output layer fused with its loss (loss), and a
trained network loaded from its checkpoint with its tokenizer (trained)."""

from rnnlm.models.loss import linear_cross_entropy
from rnnlm.models.rnn_lm import CELLS, RNNLanguageModel, check_model_args
from rnnlm.models.trained import TrainedModel, load_model, read_checkpoint

__all__ = [
    "CELLS",
    "RNNLanguageModel",
    "TrainedModel",
    "check_model_args",
    "linear_cross_entropy",
    "load_model",
    "read_checkpoint",
]

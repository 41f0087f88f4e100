import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.models.rnn_lm import RNNLanguageModel


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm", "vanilla"])
@pytest.mark.parametrize("head", [[], [12, 8]])
def test_shapes(cell, head):
    net = RNNLanguageModel(50, cell, embed_size=8, hidden_size=10, num_layers=2, linear_hidden_sizes=head)
    logits, hidden = net(torch.randint(0, 50, (3, 7)))
    assert logits.shape == (3, 7, 50)
    h = hidden[0] if cell == "lstm" else hidden
    assert h.shape == (2, 3, 10)


def test_tied_weights_share_storage():
    net = RNNLanguageModel(30, "lstm", embed_size=8, hidden_size=8, tie_weights=True)
    assert net.decoder.weight is net.embedding.weight


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cell="transformers"), "model.cell=transformers is not a known cell"),
        (dict(tie_weights=True, embed_size=8, hidden_size=10), "set model.embed_size=10"),
        (dict(tie_weights=True, embed_size=8, linear_hidden_sizes=[6]), "last of model.linear_hidden_sizes"),
        (dict(dropout=1.0), "model.dropout=1.0 must be a number in"),
        (dict(hidden_size=0), "model.hidden_size=0"),
        (dict(cell="lstm", nonlinearity="relu"), "rnn and vanilla cells only"),
    ],
)
def test_impossible_settings_say_what_to_change(kwargs, message):
    with pytest.raises(UserError, match=message):
        RNNLanguageModel(20, **kwargs)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_vanilla_matches_nn_rnn_with_the_same_weights(nonlinearity):
    torch.manual_seed(0)
    ref = RNNLanguageModel(40, "rnn", embed_size=8, hidden_size=12, num_layers=2, nonlinearity=nonlinearity).eval()
    hand = RNNLanguageModel(40, "vanilla", embed_size=8, hidden_size=12, num_layers=2, nonlinearity=nonlinearity).eval()
    hand.load_state_dict(ref.state_dict())  # same parameter names and shapes
    x = torch.randint(0, 40, (4, 9))
    h0 = torch.randn(2, 4, 12)
    out_ref, h_ref = ref(x, h0)
    out_hand, h_hand = hand(x, h0)
    torch.testing.assert_close(out_hand, out_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h_hand, h_ref, rtol=1e-5, atol=1e-5)

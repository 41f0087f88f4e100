"""AWD-LSTM's regularisers in the model: embedding dropout, locked dropout, weight drop (the fused kernel
kept), per-layer sizes and AR/TAR. Each is checked against its definition, in training and in eval."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rnnlm.errors import UserError
from rnnlm.models.regularisers import activation_penalty, embedding_dropout, locked_dropout, run_weight_dropped
from rnnlm.models.rnn_lm import RNNLanguageModel

AWD_SMALL = dict(
    cell="lstm", embed_size=6, hidden_size=[10, 10, 6], num_layers=3, tie_weights=True, locked_dropout=True,
    dropout_embed=0.1, dropout_input=0.4, dropout_hidden=0.25, dropout_output=0.4, weight_drop=0.5,
)  # fmt: skip


def test_embedding_dropout_drops_whole_word_types_and_rescales_the_rest():
    torch.manual_seed(0)
    emb = nn.Embedding(50, 8)
    words = torch.randint(0, 50, (16, 30))  # every type occurs many times
    out = embedding_dropout(emb, words, 0.3, training=True)
    scale = out / emb(words)
    for w in words.unique():
        factors = scale[words == w]
        # One choice per word type: all of its occurrences dropped, or all kept and scaled by 1 / (1 - p).
        assert torch.allclose(factors, torch.zeros_like(factors)) or torch.allclose(
            factors, factors.new_full((), 1 / 0.7)
        )
    dropped = {int(w) for w in words.unique() if scale[words == w].abs().max() == 0}
    assert 0 < len(dropped) < 50
    assert torch.equal(embedding_dropout(emb, words, 0.3, training=False), emb(words))


def test_locked_dropout_keeps_one_mask_per_sequence_over_time():
    torch.manual_seed(0)
    x = torch.ones(4, 12, 9)
    out = locked_dropout(x, 0.5, training=True)
    assert torch.equal(out, out[:, :1].expand_as(out))  # the same at every step
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert not torch.equal(out[0], out[1])  # its own mask per row
    assert torch.equal(locked_dropout(x, 0.5, training=False), x)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU, nn.RNN])
def test_weight_drop_runs_the_fused_kernel_on_freshly_dropped_hidden_weights(cell):
    torch.manual_seed(0)
    rnn = cell(5, 7, 2, batch_first=True)
    x = torch.randn(3, 6, 5)
    torch.manual_seed(1)
    out, _ = run_weight_dropped(rnn, x, None, 0.5, training=True)
    # The same draws by hand: a copy of the module whose hidden weights are the dropped ones gives the same output.
    copy = cell(5, 7, 2, batch_first=True)
    copy.load_state_dict(rnn.state_dict())
    torch.manual_seed(1)
    masks = {}
    with torch.no_grad():
        for name in ("weight_hh_l0", "weight_hh_l1"):
            dropped = F.dropout(getattr(rnn, name), 0.5, True)
            masks[name] = dropped != 0
            getattr(copy, name).copy_(dropped)
    assert torch.allclose(out, copy(x)[0], atol=1e-6)
    # Another step draws other masks; eval uses the undropped weights.
    again, _ = run_weight_dropped(rnn, x, None, 0.5, training=True)
    assert not torch.allclose(out, again)
    assert torch.equal(run_weight_dropped(rnn, x, None, 0.5, training=False)[0], rnn(x)[0])
    # Gradients reach the module's own parameters, and only through the kept entries.
    out.pow(2).sum().backward()
    for name, kept in masks.items():
        grad = getattr(rnn, name).grad
        assert grad is not None and grad[~kept].abs().max() == 0 and grad[kept].abs().max() > 0
    assert list(dict(rnn.named_parameters())) == list(dict(copy.named_parameters()))  # names kept (checkpoints)


def test_weight_drop_keeps_the_librarys_fused_rnn_call():
    """The dropped weights go to aten::lstm, the one fused call, not to a Python loop over time steps."""
    rnn = nn.LSTM(5, 7, 2, batch_first=True)
    x = torch.randn(3, 6, 5)
    with torch.profiler.profile() as prof:
        run_weight_dropped(rnn, x, None, 0.5, training=True)
    names = [e.name for e in prof.events()]
    assert names.count("aten::lstm") == 1 and names.count("aten::dropout") == 2


def test_the_awd_model_has_per_layer_sizes_tied_weights_and_a_state_per_layer():
    net = RNNLanguageModel(30, **AWD_SMALL)
    assert [layer.hidden_size for layer in net.rnn.layers] == [10, 10, 6]
    assert net.decoder.weight is net.embedding.weight
    tokens = torch.randint(0, 30, (4, 9))
    net.eval()
    logits, state = net(tokens)
    assert logits.shape == (4, 9, 30)
    assert [tuple(s.shape) for s in state] == [(1, 4, 10), (1, 4, 10), (1, 4, 10), (1, 4, 10), (1, 4, 6), (1, 4, 6)]
    # The state carries: two halves with the state passed on equal the whole.
    first, mid = net(tokens[:, :4])
    second, _ = net(tokens[:, 4:], mid)
    assert torch.allclose(torch.cat([first, second], 1), logits, atol=1e-5)


def test_every_awd_dropout_is_off_in_eval_and_on_in_training():
    torch.manual_seed(0)
    net = RNNLanguageModel(30, **AWD_SMALL)
    tokens = torch.randint(0, 30, (4, 9))
    net.eval()
    assert torch.equal(net(tokens)[0], net(tokens)[0])
    net.train()
    assert not torch.allclose(net(tokens)[0], net(tokens)[0])
    for key in ("dropout_embed", "dropout_input", "dropout_hidden", "dropout_output", "weight_drop"):
        only = {**AWD_SMALL, **dict.fromkeys(("dropout_embed", "dropout_input", "dropout_hidden", "dropout_output",
                                              "weight_drop"), 0.0), key: 0.5}  # fmt: skip
        one = RNNLanguageModel(30, **only).train()
        assert not torch.allclose(one(tokens)[0], one(tokens)[0]), key


def test_the_default_model_keeps_its_layout_and_checkpoint_names():
    net = RNNLanguageModel(30)
    assert isinstance(net.rnn, nn.LSTM) and net.rnn.num_layers == 2
    assert sorted(net.state_dict()) == sorted(
        ["embedding.weight", "decoder.weight", "decoder.bias"]
        + [f"rnn.{kind}_l{i}" for i in range(2) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    )


def test_activation_penalties_are_awd_lstms_means_over_target_positions():
    torch.manual_seed(0)
    raw, dropped = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    mask = torch.ones(2, 5)
    ar = activation_penalty(raw, dropped, mask, ar=2.0, tar=0.0)
    tar = activation_penalty(raw, dropped, mask, ar=0.0, tar=1.0)
    assert ar == pytest.approx(2.0 * dropped.pow(2).mean().item(), rel=1e-6)
    assert tar == pytest.approx((raw[:, 1:] - raw[:, :-1]).pow(2).mean().item(), rel=1e-6)
    # Pads (mask 0) count for nothing: only the first 3 positions of row 1 are real.
    mask[1, 3:] = 0
    garbage = dropped.clone()
    garbage[1, 3:] = 1e6
    expected = torch.cat([dropped[0], dropped[1, :3]]).pow(2).mean() * 2.0
    assert activation_penalty(raw, garbage, mask, 2.0, 0.0) == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"weight_drop": 1.0}, "model.weight_drop=1.0 must be a number in [0.0, 1.0)"),
        ({"dropout_embed": -0.1}, "model.dropout_embed=-0.1 must be a number in [0.0, 1.0)"),
        ({"dropout_hidden": 1.5}, "model.dropout_hidden=1.5 must be a number in [0.0, 1.0)"),
        ({"locked_dropout": "yes"}, "model.locked_dropout='yes' must be true or false"),
        ({"hidden_size": [10, 10, 6], "num_layers": 2}, "gives 3 layer sizes but model.num_layers=2"),
        ({"hidden_size": [10, 10], "tie_weights": True}, "needs the last layer's size (model.hidden_size) (10) to"),
        ({"hidden_size": []}, "model.hidden_size=[] gives no layer"),
    ],
)
def test_bad_regulariser_settings_are_one_sentence(settings, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        RNNLanguageModel(30, **{"embed_size": 6, **settings})

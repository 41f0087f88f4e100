"""The new cells compute what their equations say: each parallel form (a window at once, the log-space scan)
equals its step-by-step form, forward and gradients; the Mogrifier with 0 rounds is an LSTM; weight drop masks
what AWD-LSTM masks; and a small trained run of each cell generates text whose log-probability equals
scoring it (generation steps one token at a time, scoring runs the parallel form)."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.generation import GenerationConfig, Generator, load_model, score
from rnnlm.models.cells import network_settings
from rnnlm.models.cells.minimal import MinGRULayer, MinLSTMLayer
from rnnlm.models.cells.mogrifier import MogrifierLayer
from rnnlm.models.cells.qrnn import QRNNLayer
from rnnlm.models.cells.scan import Stepped, doubling_scan
from rnnlm.models.regularisers import hidden_weight_names
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.run.config_checks import check_config
from tests.conftest import TINY_EVAL, compose_config, eval_here, tiny_overrides, train_here

NEW_CELLS = ("qrnn", "mogrifier", "mingru", "minlstm", "transformer", "window")
# The tiny runs take tens of optimizer steps: the Transformer's warm-up (500 steps) shortened to fit.
EXTRA = {"transformer": ("scheduler.warmup_steps=5",)}
BATCH, STEPS, IN, OUT = 3, 25, 7, 6


def _layers():
    """Each layer with a state to start from (a QRNN's c is inside (-1, 1); window 2 adds the last input)."""
    c = torch.rand(1, BATCH, OUT) * 2 - 1
    return {"mingru": (MinGRULayer(IN, OUT), torch.randn(1, BATCH, OUT)),
            "minlstm": (MinLSTMLayer(IN, OUT), torch.randn(1, BATCH, OUT)),
            "qrnn-1": (QRNNLayer(IN, OUT, 1), c),
            "qrnn-2": (QRNNLayer(IN, OUT, 2), (c, torch.randn(1, BATCH, IN)))}  # fmt: skip


def _run(layer, x, state, stepwise: bool):
    """The output and final state over the whole window, or one token at a time carrying the state."""
    if not stepwise:
        return layer(x, state)
    outputs = []
    for t in range(x.shape[1]):
        out, state = layer(x[:, t : t + 1], state)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state


@pytest.mark.parametrize("name", ["mingru", "minlstm", "qrnn-1", "qrnn-2"])
@pytest.mark.parametrize("start", ["state", "zeros"])
def test_the_parallel_scan_equals_the_step_by_step_recurrence_forward_and_backward(name, start):
    torch.manual_seed(0)
    layer, state = _layers()[name]
    state = None if start == "zeros" else state
    x = torch.randn(BATCH, STEPS, IN) * 2
    weights = torch.randn(BATCH, STEPS, OUT)
    results = []
    for stepwise in (False, True):
        layer.zero_grad()
        xs = x.clone().requires_grad_()
        out, final = _run(layer, xs, state, stepwise)
        (out * weights).sum().backward()
        finals = final if isinstance(final, tuple) else (final,)
        results.append([out, *finals, xs.grad, *(p.grad.clone() for p in layer.parameters())])
    assert all(v.dtype == torch.float32 for v in results[0][:2])
    for parallel, step in zip(*results):
        torch.testing.assert_close(parallel, step, rtol=1e-5, atol=1e-5)


def test_the_gpus_doubling_scan_and_the_cpus_stepped_scan_agree_forward_and_backward():
    torch.manual_seed(0)
    a, b, h0 = torch.rand(BATCH, STEPS, OUT), torch.randn(BATCH, STEPS, OUT), torch.randn(BATCH, OUT)
    weights = torch.randn(BATCH, STEPS, OUT)
    results = []
    for scan in (Stepped.apply, doubling_scan):
        inputs = [t.clone().requires_grad_() for t in (a, b, h0)]
        out = scan(*inputs)
        (out * weights).sum().backward()
        results.append([out, *(t.grad for t in inputs)])
    h, reference = h0, []
    for t in range(STEPS):
        h = a[:, t] * h + b[:, t]
        reference.append(h)
    torch.testing.assert_close(results[0][0], torch.stack(reference, 1), rtol=1e-5, atol=1e-5)
    for stepped, doubled in zip(*results):
        torch.testing.assert_close(stepped, doubled, rtol=1e-5, atol=1e-5)


def test_the_mogrifier_with_no_rounds_is_the_lstm_with_the_same_weights():
    torch.manual_seed(0)
    lstm = RNNLanguageModel(50, "lstm", embed_size=8, hidden_size=6, num_layers=2).eval()
    mog = RNNLanguageModel(50, "mogrifier", embed_size=8, hidden_size=6, num_layers=2, rounds=0).eval()
    weights = {k: v for k, v in lstm.state_dict().items() if not k.startswith("rnn.")}
    for name, value in lstm.rnn.state_dict().items():  # nn.LSTM's weight_ih_l1 is layer 1's weight_ih_l0
        base, layer = name.rsplit("_l", 1)
        weights[f"rnn.layers.{layer}.{base}_l0"] = value
    mog.load_state_dict(weights)
    tokens = torch.randint(0, 50, (4, 12))
    (a, (h, c)), (b, state) = lstm(tokens), mog(tokens)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([h[0], c[0], h[1], c[1]]), torch.cat([s[0] for s in state]))


def test_the_mogrifiers_rounds_gate_x_and_h_in_turn():
    torch.manual_seed(0)
    layer = MogrifierLayer(IN, OUT, rounds=3, rank=None)
    x, h = torch.randn(BATCH, IN), torch.randn(BATCH, OUT)
    q1, r2, q3 = (g.weight for g in layer.rounds)
    x1 = 2 * torch.sigmoid(h @ q1.T) * x
    h2 = 2 * torch.sigmoid(x1 @ r2.T) * h
    x3 = 2 * torch.sigmoid(h2 @ q3.T) * x1
    got_x, got_h = layer.mogrify(x, h)
    torch.testing.assert_close(got_x, x3)
    torch.testing.assert_close(got_h, h2)
    low = MogrifierLayer(IN, OUT, rounds=2, rank=3)
    assert [tuple(p.shape) for p in low.rounds.parameters()] == [(3, OUT), (IN, 3), (3, IN), (OUT, 3)]


def test_weight_drop_masks_the_mogrifiers_hidden_weights_and_the_qrnns_gate_weights():
    mog = RNNLanguageModel(50, "mogrifier", embed_size=8, hidden_size=6, weight_drop=0.5).rnn.layers[0]
    qrnn = RNNLanguageModel(50, "qrnn", embed_size=8, hidden_size=6, weight_drop=0.5).rnn.layers[0]
    assert hidden_weight_names(mog) == ["weight_hh_l0"] and hidden_weight_names(qrnn) == ["weight"]
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    for layer in (mog, qrnn):
        layer.train()
        assert not torch.equal(layer(x)[0], layer(x)[0])  # a new mask per call
        layer.eval()
        assert torch.equal(layer(x)[0], layer(x)[0])


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_a_cell_with_nothing_to_drop_refuses_weight_drop_in_one_sentence(cell):
    refusal = rf"^model.weight_drop applies to the .* cells only: drop it for model={cell}\.$"
    with pytest.raises(UserError, match=refusal):
        network_settings({"cell": cell, "weight_drop": 0.3})


def test_bad_cell_settings_are_refused_naming_the_setting():
    with pytest.raises(UserError, match=r"^model.window=3 is not a convolution width the QRNN has: use 2"):
        network_settings({"cell": "qrnn", "window": 3})
    with pytest.raises(UserError, match=r"^model.rounds=-1 must be an integer >= 0\.$"):
        network_settings({"cell": "mogrifier", "rounds": -1})
    with pytest.raises(UserError, match=r"^model.cell=mogrify is not a known cell: use one of .*mogrifier"):
        network_settings({"cell": "mogrify"})
    # As train.py checks a config, before any data is read (Hydra itself refuses model.weight_drop without +).
    with pytest.raises(UserError, match=r"^model.weight_drop applies to the .* cells only: drop it for model=mingru"):
        check_config(compose_config("model=mingru", "+model.weight_drop=0.2"))
    with pytest.raises(UserError, match=r"^model.params='2.6X' is not a parameter count"):
        check_config(compose_config("model=qrnn", "model.params=2.6X"))


@pytest.mark.parametrize("cell", NEW_CELLS)
def test_each_cell_trains_and_its_generation_equals_scoring(cell, tiny_corpus, tmp_path):
    overrides = (*tiny_overrides(tiny_corpus), f"model={cell}", *EXTRA.get(cell, ()), "trainer.max_epochs=1")
    results = train_here(*overrides, run_dir=tmp_path)
    best = next((tmp_path / "checkpoints").glob("epoch*.ckpt"))
    again = eval_here(best, tiny_corpus, tmp_path / "eval", *TINY_EVAL)["test/ppl"]
    assert again == pytest.approx(results["test/ppl"], rel=1e-5)  # eval.py rebuilds the cell from the checkpoint
    model = load_model(best, "cpu")
    gen = Generator(model.net, model.tokenizer)
    for cfg in (GenerationConfig("sample", max_len=30, seed=1), GenerationConfig("beam", max_len=30, beam_size=3)):
        finished = [r for r in gen.generate([""], 3, cfg) if 0 < len(r.tokens) < cfg.max_len]  # ended with <eos>
        assert finished, cfg
        rescored = score(gen.net, gen.tok, [r.text for r in finished])
        for result, logprob in zip(finished, rescored.logprob):
            assert math.isclose(result.logprob, logprob, rel_tol=1e-5), (result.text, result.logprob, logprob)

"""The Transformer cell computes what docs/CELLS.md says: causal, a sliding window of model.context tokens, the
same outputs whether a sequence arrives at once, window by window with the state, or one token at a time (the
key/value cache); sentences padded in one batch equal each alone; model.params meets a budget in widths the heads
divide; its warm-up schedule; and its bad settings are refused in one sentence each, before data is read."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.models.budget import count, fit_budget
from rnnlm.models.cells import network_settings
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.run.config_checks import check_config
from rnnlm.training.schedulers import Warmup
from tests.conftest import compose_config

VOCAB, BATCH, STEPS = 50, 3, 23


def network(context: int = 7, **settings) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(VOCAB, "transformer", embed_size=16, hidden_size=24, heads=2, context=context, **settings)


def tokens(steps: int = STEPS) -> torch.Tensor:
    return torch.randint(0, VOCAB, (BATCH, steps), generator=torch.Generator().manual_seed(1))


def in_pieces(net: RNNLanguageModel, x: torch.Tensor, size: int):
    """The outputs over x read `size` tokens per call, the state carried; and the final state."""
    outputs, state = [], None
    for start in range(0, x.shape[1], size):
        out, state = net(x[:, start : start + size], state)
        outputs.append(out)
    return torch.cat(outputs, dim=1), state


@pytest.mark.parametrize("size", [1, 2, 5, 6, 7, 11])
def test_the_cached_forward_equals_the_whole_sequence_at_once(size):
    """Sizes below, at and above the context (7): one token at a time is generation's key/value cache."""
    net = network().eval()
    x = tokens()
    with torch.no_grad():
        whole, state = net(x)
        pieces, carried = in_pieces(net, x, size)
    torch.testing.assert_close(pieces, whole, rtol=1e-5, atol=1e-5)
    assert carried[0].tolist() == [[6] * BATCH]  # every slot of the context - 1 filled
    for a, b in zip(state[1:], carried[1:]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_a_changed_token_changes_no_earlier_output_and_none_beyond_the_layers_reach():
    """Each layer attends to the context - 1 tokens before a token in the layer below, so two layers of context 4
    reach 2 x 3 tokens back: token 10 changes the outputs at 10 to 16, and none after."""
    net = network(context=4).eval()
    x = tokens()
    changed = x.clone()
    changed[:, 10] = (changed[:, 10] + 1) % VOCAB
    with torch.no_grad():
        before, after = net(x)[0], net(changed)[0]
        cached = in_pieces(net, changed, 1)[0]
    assert torch.equal(before[:, :10], after[:, :10])  # causal
    assert (before[:, 10:17] - after[:, 10:17]).abs().amax(-1).min() > 1e-6
    torch.testing.assert_close(before[:, 17:], after[:, 17:], rtol=1e-6, atol=1e-6)  # and no further
    torch.testing.assert_close(cached, after, rtol=1e-5, atol=1e-5)


def test_gradients_reach_the_layers_span_and_the_memory_is_the_previous_windows_keys():
    """Stream mode: a window's loss reaches back num_layers x (context - 1) tokens within the window; the memory
    carried in holds the previous window's last context - 1 tokens of every layer, so a window started from it
    equals the same tokens read with the ones before."""
    net = network(context=5, dropout=0.0).train()
    x = tokens(12)
    emb = net.embedding(x).detach().requires_grad_()
    out, _ = net.rnn(emb)
    (out[:, -1] * torch.randn(16, generator=torch.Generator().manual_seed(2))).sum().backward()
    reached = emb.grad.abs().sum(-1) > 0
    assert reached[:, 3:].all() and not reached[:, :3].any()  # 11 - 2 x 4 = 3
    net.eval()
    with torch.no_grad():
        _, state = net(x[:, :8])
        assert state[1].shape == (4, BATCH, 16)
        torch.testing.assert_close(net(x[:, 8:], state)[0], net(x)[0][:, 8:], rtol=1e-5, atol=1e-5)


def test_sentences_padded_in_one_batch_equal_each_read_alone():
    """Sentence mode pads on the right: causal attention keeps each sentence's outputs its own."""
    net = network(context=64).eval()
    lengths, pad = [9, 4, 6], 0
    rows = [torch.randint(1, VOCAB, (n,), generator=torch.Generator().manual_seed(n)) for n in lengths]
    batch = torch.full((3, 9), pad)
    for i, row in enumerate(rows):
        batch[i, : len(row)] = row
    with torch.no_grad():
        together = net(batch)[0]
        for i, row in enumerate(rows):
            torch.testing.assert_close(together[i, : len(row)], net(row[None])[0][0], rtol=1e-5, atol=1e-5)


def test_a_budget_sets_the_width_and_feed_forward_at_their_ratio_with_whole_even_heads():
    sized = fit_budget({"cell": "transformer", "params": "2.65M"}, 10_002)
    width, ff = sized["embed_size"], sized["hidden_size"]
    assert width % (2 * 4) == 0 and ff == 4 * width
    assert count(sized, 10_002) == pytest.approx(2_650_000, rel=0.05)
    narrower = {**sized, "embed_size": width - 8, "hidden_size": 4 * (width - 8)}
    wider = {**sized, "embed_size": width + 8, "hidden_size": 4 * (width + 8)}
    gaps = [abs(count(m, 10_002) - 2_650_000) for m in (narrower, sized, wider)]
    assert gaps[1] == min(gaps)
    assert RNNLanguageModel(10_002, "transformer", params="2.65M").settings.embed_size == width


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        (
            {"embed_size": 30, "heads": 4},
            r"^model.embed_size=30 must split into model.heads=4 heads of an even width "
            r"\(.*\): set model.embed_size=32 or change model.heads\.$",
        ),  # fmt: skip
        ({"embed_size": 12, "heads": 4}, r"^model.embed_size=12 must split into model.heads=4 .*embed_size=16"),
        ({"context": 0}, r"^model.context=0 must be a positive integer\.$"),
        ({"heads": 0}, r"^model.heads=0 must be a positive integer\.$"),
        ({"init_range": 0.1}, r"^model.init_range=0.1 sets every weight uniform.*drop it for model=transformer"),
        ({"weight_drop": 0.3}, r"^model.weight_drop applies to the .* cells only: drop it for model=transformer\.$"),
        ({"rounds": 2}, r"^model.rounds applies to the mogrifier cells only: drop it for model=transformer\.$"),
    ],
)
def test_bad_transformer_settings_are_refused_in_one_sentence(settings, refusal):
    with pytest.raises(UserError, match=refusal):
        network_settings({"cell": "transformer", **settings})


def test_a_bad_setting_is_refused_before_data_is_read():
    with pytest.raises(UserError, match=r"^model.embed_size=30 must split into model.heads=4"):
        check_config(compose_config("model=transformer", "model.embed_size=30"))
    with pytest.raises(UserError, match=r"^model.window applies to the qrnn cells only: drop it for model=transformer"):
        check_config(compose_config("model=transformer", "+model.window=2"))


def test_model_transformer_brings_its_warm_up_and_a_chosen_schedule_wins():
    cfg = compose_config("model=transformer")
    assert cfg.scheduler._target_ == "rnnlm.training.schedulers.Warmup" and cfg.optim._target_ == "torch.optim.Adam"
    assert cfg.scheduler.interval == "step"
    assert compose_config("model=transformer", "scheduler=plateau").scheduler.monitor == "val/ppl"
    assert compose_config("model=lstm").get("scheduler") is None


@pytest.mark.parametrize("decay", ["cosine", "linear", "none"])
def test_the_warm_up_rises_linearly_then_decays_to_its_floor(decay):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = Warmup(opt, warmup_steps=4, total_steps=14, decay=decay, floor=0.1)
    rates = []
    for _ in range(15):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert rates[:4] == pytest.approx([0.5, 1.0, 1.5, 2.0])
    middle = {"cosine": 2 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))), "linear": 2 * (0.1 + 0.9 * 0.5),
              "none": 2.0}[decay]  # fmt: skip
    assert rates[9] == pytest.approx(middle)
    assert rates[14] == pytest.approx(2.0 if decay == "none" else 0.2)

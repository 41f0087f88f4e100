"""The fixed-window neural LM (Bengio et al. 2003) computes what docs/CELLS.md says: y = b + W x + U tanh(d + H x)
over the last model.context inputs and nothing further back, the same whether a sequence arrives at once, in pieces
with the state, or one token at a time; its parameters by the formula; model.params meets a budget; bad settings
are refused in one sentence each; and it trains in both data modes (context 1's empty state resumed mid-epoch)
and generates text whose log-probability equals scoring it."""

from __future__ import annotations

import math
import signal

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.generation import GenerationConfig, Generator, load_model, score
from rnnlm.lifecycle.interrupt import TrainingInterrupted
from rnnlm.models.budget import count, fit_budget
from rnnlm.models.cells import network_settings
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.run.config_checks import check_config
from tests.conftest import compose_config, tiny_overrides, train_here
from tests.test_resume import results, signal_at

VOCAB, BATCH, STEPS, EMBED, HIDDEN = 50, 3, 10, 8, 6


def network(context: int = 3, direct: bool = False, **settings) -> RNNLanguageModel:
    torch.manual_seed(0)
    return RNNLanguageModel(VOCAB, "window", embed_size=EMBED, hidden_size=HIDDEN, context=context, direct=direct,
                            **settings).eval()  # fmt: skip


def tokens(steps: int = STEPS) -> torch.Tensor:
    return torch.randint(0, VOCAB, (BATCH, steps), generator=torch.Generator().manual_seed(1))


def in_pieces(net: RNNLanguageModel, x: torch.Tensor, sizes: list[int]):
    """The outputs over x read in calls of `sizes` tokens, the state carried; and the final state."""
    outputs, state, start = [], None, 0
    for size in sizes:
        out, state = net(x[:, start : start + size], state)
        outputs.append(out)
        start += size
    return torch.cat(outputs, dim=1), state


@pytest.mark.parametrize("direct", [False, True])
@pytest.mark.parametrize("context", [1, 3, 5])
def test_a_window_at_once_in_two_calls_and_one_token_at_a_time_agree(context, direct):
    net, x = network(context, direct), tokens()
    with torch.no_grad():
        whole, state = net(x)
        for sizes in ([4, 6], [1] * STEPS):
            pieces, carried = in_pieces(net, x, sizes)
            torch.testing.assert_close(pieces, whole, rtol=1e-6, atol=1e-6)
            assert torch.equal(carried, state)
    assert state.shape == (context - 1, BATCH, EMBED)  # context 1: an empty state, carried all the same
    assert torch.equal(state, net.embedding(x[:, STEPS - context + 1 :]).detach().transpose(0, 1))


def test_the_output_at_t_reads_inputs_t_minus_context_plus_1_to_t_only():
    net, x = network(context=4), tokens(20)
    changed = x.clone()
    changed[:, 10] = (changed[:, 10] + 1) % VOCAB
    with torch.no_grad():
        before, after = net(x)[0], net(changed)[0]
        stepped = in_pieces(net, changed, [1] * 20)[0]
    assert torch.equal(before[:, :10], after[:, :10])  # causal
    assert (before[:, 10:14] - after[:, 10:14]).abs().amax(-1).min() > 1e-6  # inside the window: 10 .. 13
    assert torch.equal(before[:, 14:], after[:, 14:])  # beyond it: nothing
    torch.testing.assert_close(stepped, after, rtol=1e-6, atol=1e-6)


def test_with_direct_connections_the_logits_are_b_plus_w_x_plus_u_tanh_d_plus_h_x():
    context = 3
    net, x = network(context, direct=True), tokens()
    H, d = net.rnn.hidden.weight, net.rnn.hidden.bias
    U, W, b = net.decoder.weight[:, :HIDDEN], net.decoder.weight[:, HIDDEN:], net.decoder.bias
    assert W.shape == (VOCAB, context * EMBED)
    with torch.no_grad():
        emb = torch.cat([torch.zeros(BATCH, context - 1, EMBED), net.embedding(x)], 1)  # zeros before the start
        expected = []
        for t in range(STEPS):
            window = emb[:, t : t + context].reshape(BATCH, -1)  # oldest first
            expected.append(b + window @ W.T + torch.tanh(d + window @ H.T) @ U.T)
        torch.testing.assert_close(net(x)[0], torch.stack(expected, 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("direct", [False, True])
def test_the_parameters_are_the_papers_count(direct):
    context = 3
    net = network(context, direct)
    out = HIDDEN + direct * context * EMBED
    assert net.settings.output_size == out
    expected = context * EMBED * HIDDEN + HIDDEN + VOCAB * out + VOCAB + VOCAB * EMBED
    assert sum(p.numel() for p in net.parameters()) == expected
    assert net.settings.shape() == f"window 3 x 8 -> 6{' (direct)' if direct else ''}"


def test_a_budget_scales_the_tanh_layer_and_tied_the_embedding_with_it():
    tied = fit_budget({"cell": "window", "tie_weights": True, "params": "2.65M"}, 10_000)
    assert tied["hidden_size"] == tied["embed_size"]
    assert count(tied, 10_000) == pytest.approx(2_650_000, rel=0.05)
    # Untied, the embedding stays; with direct connections its 5 x 200 features reach all 10,000 words (10M).
    direct = fit_budget({"cell": "window", "direct": True, "params": "15M"}, 10_000)
    assert "embed_size" not in direct and direct["hidden_size"] > 200
    assert count(direct, 10_000) == pytest.approx(15_000_000, rel=0.05)


@pytest.mark.parametrize(
    ("settings", "refusal"),
    [
        ({"tie_weights": True, "direct": True},
         r"^model.tie_weights=true needs the output layer to read model.embed_size \(200\) features, but "
         r"model.direct=true gives it the tanh layer and the window \(1200\): set model.direct=false or "
         r"model.tie_weights=false\.$"),
        ({"tie_weights": True, "hidden_size": 100},
         r"^model.tie_weights=true needs the last layer's size \(model.hidden_size\) \(100\) to equal "
         r"model.embed_size \(200\): set model.embed_size=100"),
        ({"context": 0}, r"^model.context=0 must be a positive integer\.$"),
        ({"direct": "yes"}, r"^model.direct='yes' must be true or false\.$"),
        ({"weight_drop": 0.3}, r"^model.weight_drop applies to the .* cells only: drop it for model=window\.$"),
        ({"num_layers": 2}, r"^model.num_layers applies to the .* cells only: drop it for model=window\.$"),
    ],
)  # fmt: skip
def test_bad_window_settings_are_refused_in_one_sentence(settings, refusal):
    with pytest.raises(UserError, match=refusal):
        network_settings({"cell": "window", **settings})


def test_tied_with_direct_connections_and_a_head_of_the_embeddings_width_is_accepted_and_checked_before_data():
    network_settings({"cell": "window", "tie_weights": True, "direct": True, "linear_hidden_sizes": [200]})
    with pytest.raises(UserError, match=r"^model.context=0 must be a positive integer\.$"):
        check_config(compose_config("model=window", "model.context=0"))


def test_under_bf16_autocast_the_state_keeps_the_inputs_dtype_and_takes_any():
    net, x = network(direct=True), tokens()
    with torch.no_grad():
        emb = net.embedding(x)
        out32, state32 = net.rnn(emb)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, state = net.rnn(emb)
            again, _ = net.rnn(emb[:, -2:], net.rnn(emb[:, :-2])[1].bfloat16())  # a state of another dtype
    assert out.dtype == torch.bfloat16 and state.dtype == torch.float32 and torch.equal(state, state32)
    torch.testing.assert_close(out.float(), out32, rtol=0.02, atol=0.02)
    torch.testing.assert_close(again.float(), out32[:, -2:], rtol=0.02, atol=0.02)


def generation_equals_scoring(best, data_mode: str) -> None:
    """Sampled and beam-searched sentences from `best` (from <sos>, or <eos> for stream mode), each finished one's
    log-probability equal to scoring it (generation steps one token at a time; scoring reads it at once)."""
    model = load_model(best, "cpu")
    assert model.data_mode == data_mode and model.net.cell == "window"
    gen = Generator(model.net, model.tokenizer, data_mode)
    for cfg in (GenerationConfig("sample", max_len=30, seed=1), GenerationConfig("beam", max_len=30, beam_size=3)):
        finished = [r for r in gen.generate([""], 3, cfg) if 0 < len(r.tokens) < cfg.max_len]  # ended with <eos>
        assert finished, cfg
        rescored = score(gen.net, gen.tok, [r.text for r in finished], data_mode=data_mode)
        for result, logprob in zip(finished, rescored.logprob):
            assert math.isclose(result.logprob, logprob, rel_tol=1e-5), (result.text, result.logprob, logprob)


def test_sentence_mode_meets_a_budget_and_generates_what_it_scores(tiny_corpus, tmp_path):
    run = train_here(*tiny_overrides(tiny_corpus), "model=window", "model.params=6K", "model.tie_weights=true",
                     "trainer.max_epochs=1", run_dir=tmp_path)  # fmt: skip
    assert math.isfinite(run["test/ppl"])
    best = results(tmp_path)["best_checkpoint"]
    net = load_model(best, "cpu").net
    assert net.settings.hidden_size == net.settings.embed_size != 16
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(6000, rel=0.05)
    generation_equals_scoring(best, "sentences")


def test_stream_mode_with_context_1_resumes_its_empty_state_mid_epoch_exactly_and_generates(tiny_corpus, tmp_path):
    """Context 1 (a bigram model, direct connections): its state is (0, batch, embed_size), carried between
    windows, saved in a mid-epoch checkpoint, restored, and reordered by beam search like any other."""
    stream = [*tiny_overrides(tiny_corpus), "model=window", "model.context=1", "model.direct=true",
              "data.mode=stream", "data.bptt=6", "optim.lr=0.01"]  # fmt: skip
    whole = train_here(*stream, run_dir=tmp_path / "whole")
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*stream, *signal_at(25, signal.SIGTERM), run_dir=tmp_path / "a")  # 17 windows an epoch
    ckpt = torch.load(stop.value.checkpoint, map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 25 and [tuple(t.shape) for t in ckpt["rnnlm_stream_hidden"]] == [(1, 0, 16, 16)]
    resumed = train_here(*stream, f"ckpt_path={stop.value.checkpoint}", run_dir=tmp_path / "b")
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5), key
    generation_equals_scoring(results(tmp_path / "whole")["best_checkpoint"], "stream")

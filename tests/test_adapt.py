"""Adapting at evaluation time (rnnlm.adapt): dynamic evaluation and the continuous cache.

Exactness: a learning rate of 0 (whatever the decay), a cache share of 0 and a cache window of 0 each equal static
evaluation in the same reading; the static reading equals a plain forward pass (stream: one pass; sentences: one
per sentence). The cache's mixture is a distribution for every token and its scored word is the fast path's. No
token is seen before it is scored: changing one word changes nothing scored before it. The update is Krause's
formula, decay cap included; every cell adapts in both layouts; the trained network is never changed.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rnnlm.adapt.cache import cache_distribution, mixed_nll
from rnnlm.adapt.dynamic import DynamicEvaluation, adaptable, check_statistics
from rnnlm.adapt.reading import Reading, read, reading
from rnnlm.adapt.search import score_text, static
from rnnlm.adapt.settings import AdaptSettings, adapt_settings
from rnnlm.adapt.statistics import gather, load_or_gather, statistics_path
from rnnlm.data.corpus import EncodedSplit
from rnnlm.errors import UserError
from rnnlm.models.cells import REGISTRY, cell_class
from rnnlm.models.rnn_lm import RNNLanguageModel

VOCAB = 30
IDS = {"pad": 0, "unk": 1, "sos": 2, "eos": 3}
CELL_EXTRA = {"transformer": {"heads": 2, "context": 10}}
LAYOUTS = ("stream", "sentences")


def net_of(cell: str = "lstm", seed: int = 0) -> RNNLanguageModel:
    torch.manual_seed(seed)
    layers = {"num_layers": 2} if "num_layers" in cell_class(cell).Settings.names() else {}  # the window has one
    return RNNLanguageModel(VOCAB, cell, embed_size=12, hidden_size=16, **layers, **CELL_EXTRA.get(cell, {})).eval()


def sentences(n: int = 24, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(4, VOCAB) for _ in range(rng.randint(2, 8))] for _ in range(n)]


def text_of(layout: str, ids: list[list[int]] | None = None) -> Reading:
    return reading(EncodedSplit.from_ids(ids or sentences()), IDS, layout, "eos" if layout == "stream" else "sos")


def reference_nll(net: RNNLanguageModel, text: Reading) -> np.ndarray:
    """Without segments: one pass over a stream, one per sentence otherwise."""
    with torch.no_grad():
        bounds = [*text.starts.tolist(), len(text)]
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            logits, _ = net(text.inputs[None, a:b])
            out.append(F.cross_entropy(logits[0].float(), text.targets[a:b], reduction="none"))
        return torch.cat(out).double().numpy()


def dynamic(**kw) -> AdaptSettings:
    return AdaptSettings(methods=["dynamic"], **kw)


def cache(**kw) -> AdaptSettings:
    return AdaptSettings(methods=["cache"], **kw)


def statistics(net: RNNLanguageModel, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(p.shape, generator=g) * 0.1 + 1e-4 for p in net.parameters()]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layouts(layout):
    """Stream: the sentences back to back, each + <eos>, the first token context only; sentences: each from its
    start token, every word and <eos> scored."""
    text = text_of(layout, [[5, 6], [7]])
    if layout == "stream":
        assert text.inputs.tolist() == [5, 6, 3, 7] and text.targets.tolist() == [6, 3, 7, 3]
        assert text.starts.tolist() == [0] and text.line.tolist() == [0, 0, 1, 1]
    else:
        assert text.inputs.tolist() == [2, 5, 6, 2, 7] and text.targets.tolist() == [5, 6, 3, 7, 3]
        assert text.starts.tolist() == [0, 3] and text.line.tolist() == [0, 0, 0, 1, 1]
    assert len(text.head(2)) == 2 and len(text.head(None)) == len(text)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("segment", (1, 5, 7))
def test_static_reading_is_a_plain_pass(layout, segment):
    net = net_of()
    np.testing.assert_allclose(static(net, text_of(layout), segment).nll, reference_nll(net, text_of(layout)),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "settings",
    [dynamic(rule="rms", lr=0.0, decay=0.05), dynamic(rule="sgd", lr=0.0, decay=0.0), dynamic(rule="sgd", lr=0.0),
     cache(lam=0.0), cache(window=0, lam=0.5), AdaptSettings(methods=["dynamic", "cache"], lr=0.0, lam=0.0)],
    ids=["rms-lr0", "sgd-lr0-decay0", "sgd-lr0", "cache-lam0", "cache-window0", "both-off"],
)  # fmt: skip
def test_switched_off_equals_static(layout, settings):
    net = net_of()
    text = text_of(layout)
    adapted = score_text(net, text, settings, statistics(net))
    np.testing.assert_allclose(adapted.nll, static(net, text, settings.segment).nll, rtol=0, atol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("method", ("dynamic", "cache"))
def test_no_token_is_seen_before_it_is_scored(layout, method):
    """Changing the word at position k changes nothing scored before k: the segment [10, 15) is scored before the
    update that learns from it (positions 10 and 11 would change if the update came first), and the cache holds
    only earlier states. The next segment does change: the test can tell."""
    ids = [[5 + (i % 20) for i in range(30)]]  # one long sentence: no resets near k
    k = 12
    changed = [list(ids[0])]
    changed[0][k + (1 if layout == "stream" else 0)] = 4  # the word that is targets[k]
    settings = dynamic(rule="sgd", lr=1.0, decay=0.0) if method == "dynamic" else cache(lam=0.5, theta=1.0)
    net = net_of()
    a, b = (score_text(net, text_of(layout, x), settings, None) for x in (ids, changed))
    np.testing.assert_array_equal(a.nll[:k], b.nll[:k])
    assert a.nll[k] != b.nll[k]
    later = slice(15, 20) if method == "dynamic" else slice(k + 2, k + 3)  # k+1 reads the new word as its input
    assert np.all(np.abs(a.nll[later] - b.nll[later]) > 1e-6)


def test_the_update_is_krauses_rule():
    """theta <- theta - lr g / (MS + eps) + decay min(MS / mean MS, 1 / decay) (theta0 - theta), from a moved theta so
    the decay term counts, with MS large enough somewhere for the 1 / decay cap to bite."""
    net = adaptable(net_of())
    ms = statistics(net)
    ms[0][0] = 50.0  # MS / mean MS far above 1 / decay
    settings = dynamic(lr=1e-3, decay=0.2, eps=1e-4)
    update = DynamicEvaluation(net, settings, ms)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    theta = [p.detach().clone() for p in net.parameters()]
    logits, _ = net(text_of("stream").inputs[None, :5])
    loss = F.cross_entropy(logits[0], text_of("stream").targets[:5])
    grads = torch.autograd.grad(loss, list(net.parameters()), retain_graph=True)
    mean = torch.stack([m.mean() for m in ms]).mean()
    expected = [t - 1e-3 * g / (m + 1e-4) + 0.2 * torch.clamp(m / mean, max=5.0) * (t0 - t)
                for t, g, m, t0 in zip(theta, grads, ms, update.theta0)]  # fmt: skip
    assert (ms[0] / mean > 5.0).any()
    update(loss)
    for p, e in zip(net.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cell", sorted(REGISTRY))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_cell_adapts(cell, layout):
    """Each cell: a zero rate equals static; the rms rule and the cache each lower the perplexity of a repetitive
    text (the second half repeats the first); the trained network is left as it was."""
    net = net_of(cell)
    before = [p.detach().clone() for p in net.parameters()]
    half = sentences(12, seed=3)
    text = text_of(layout, half + half)
    base = static(net, text, 5)
    off = score_text(net, text, dynamic(lr=0.0), statistics(net))
    np.testing.assert_allclose(off.nll, base.nll, atol=1e-6)
    adapted = score_text(net, text, dynamic(rule="sgd", lr=0.3, decay=0.0), None)
    cached = score_text(net, text, cache(lam=0.3, theta=1.0), None)
    assert adapted.ppl < 0.95 * base.ppl and cached.ppl < 0.95 * base.ppl, (adapted.ppl, cached.ppl, base.ppl)
    for p, b in zip(net.parameters(), before):
        assert torch.equal(p, b)


def test_cache_mixture_is_a_distribution():
    """For every position: the whole mixture sums to 1, and its probability of the word that came is the fast
    path's (the model alone at the first position, where nothing is remembered)."""
    torch.manual_seed(0)
    T, D = 40, 8
    logits, keys = torch.randn(T, VOCAB), torch.randn(T, D)
    targets = torch.randint(4, 12, (T,))  # few words: the cache often holds the next one
    model_nll = F.cross_entropy(logits, targets, reduction="none").double().numpy()
    for window in (1, 7, 100):
        fast = mixed_nll(model_nll, keys, targets, window, theta=0.7, lam=0.3)
        for t in range(T):
            p = cache_distribution(logits[t], keys, targets, t, window, theta=0.7, lam=0.3)
            assert abs(float(p.sum()) - 1.0) < 1e-12
            assert -np.log(float(p[targets[t]])) == pytest.approx(fast[t], rel=1e-6)  # the model NLL is fp32
        assert fast[0] == model_nll[0]


def test_statistics_are_saved_beside_the_checkpoint_and_reused(tmp_path, monkeypatch):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"weights")
    net, settings = net_of(), dynamic(stats_tokens=200, stats_batch_size=4)
    split = EncodedSplit.from_ids(sentences(60))
    saved = {}
    for layout in LAYOUTS:
        saved[layout] = ms = load_or_gather(ckpt, net, split, IDS, layout, "sos", settings)
        assert statistics_path(ckpt, settings, layout).is_file()
        assert len(ms) == len(list(net.parameters())) and all(m.shape == p.shape for m, p in zip(ms, net.parameters()))
        assert all(bool((m >= 0).all()) for m in ms) and any(bool((m > 0).any()) for m in ms)
    _, tokens = gather(net, split, IDS, "stream", "sos", settings)
    assert tokens == 200  # 10 batches of 4 columns x 5 tokens
    monkeypatch.setattr("rnnlm.adapt.statistics.gather", lambda *a, **k: pytest.fail("gathered again"))
    again = load_or_gather(ckpt, net, split, IDS, "stream", "sos", settings)
    assert all(torch.equal(a, b) for a, b in zip(again, saved["stream"]))
    assert load_or_gather(ckpt, net, None, IDS, "stream", "sos", settings) is not None  # generate.py's reading
    assert load_or_gather(ckpt, net, None, IDS, "stream", "sos", settings.but(segment=7)) is None
    ckpt.write_bytes(b"other weights")  # another checkpoint at that path: the statistics are stale
    assert load_or_gather(ckpt, net, None, IDS, "stream", "sos", settings) is None
    with pytest.raises(UserError, match=r"adapt.rule=rms needs .* or use adapt.rule=sgd\.$"):
        check_statistics(settings, None, "none were saved")


def test_segments_are_read_with_the_weights_of_the_moment():
    """read() calls the update once per segment, after scoring it, with that segment's mean NLL."""
    net = adaptable(net_of())
    text = text_of("sentences")
    seen = []
    read(net, text, 5, update=lambda loss: seen.append(float(loss.detach())))
    assert len(seen) == -(-len(text) // 5)
    done = read(net, text, 5)
    np.testing.assert_allclose(seen[0], done.nll[:5].mean(), rtol=1e-5)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"lr": -1e-3}, r"adapt.lr=-0.001 must be"),
        ({"decay": 1.5}, r"adapt.decay=1.5 must be"),
        ({"lam": -0.1}, r"adapt.lam=-0.1 must be"),
        ({"segment": 0}, r"adapt.segment=0 must be a positive integer\.$"),
        ({"window": -1}, r"adapt.window=-1 must be an integer >= 0\.$"),
        ({"rule": "adam"}, r"adapt.rule='adam' is not known: use rms .* or sgd\.$"),
        ({"key": "layer1"}, r"adapt.key='layer1' is not known"),
        ({"methods": ["pointer"]}, r"adapt.methods=\['pointer'\] must name dynamic and/or cache"),
        ({"windw": 5}, r"adapt.windw is not a setting of adapt: remove it or use one of"),
    ],
)
def test_bad_settings_are_refused_in_one_sentence(values, message):
    with pytest.raises(UserError, match=message):
        adapt_settings({"methods": ["dynamic", "cache"], **values})


def test_a_window_longer_than_the_text_is_clamped_with_one_line(caplog):
    """Said once; the scores are those of a window as long as the text."""
    settings = cache(window=500)
    with caplog.at_level("INFO", logger="rnnlm"):
        assert settings.fitted(40) is settings and settings.fitted(800) is settings
    assert [r.message for r in caplog.records] == [
        "adapt.window=500 is more than the 40 tokens read: the cache holds them all (window 40)"
    ]
    text = text_of("stream")
    long, exact = (score_text(net_of(), text, cache(window=w, lam=0.3), None) for w in (500, len(text)))
    np.testing.assert_array_equal(long.nll, exact.nll)


def test_the_cache_keys_on_the_chosen_layer():
    """key=rnn: the last recurrent layer's output; key=head: what the output layer reads. Without an MLP head they
    are the same vectors; with one the keys are the head's (8 wide, not 16)."""
    text = text_of("stream")
    net = net_of()
    rnn, head = (read(net, text, 5, key=k).keys for k in ("rnn", "head"))
    assert torch.equal(rnn, head) and rnn.shape == (len(text), 16)
    torch.manual_seed(0)
    with_head = RNNLanguageModel(VOCAB, "lstm", embed_size=12, hidden_size=16, num_layers=2, linear_hidden_sizes=[8])
    assert read(with_head.eval(), text, 5, key="head").keys.shape == (len(text), 8)
    assert read(with_head, text, 5, key="rnn").keys.shape == (len(text), 16)

"""model.output=adaptive: torch's adaptive softmax over the frequency order, exact NLL and log-probabilities in
token-id order, tying where the sizes allow, and the whole path (train, resume, eval, score, generate, bf16)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.models.output import AdaptiveOutput, check_cutoffs, coverage_cutoffs
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.precision import cpu_has_bf16
from tests.conftest import train_here

V = 1200


def output_layer(tied=None, div_value=4.0, width=16, cutoffs=(100, 400)) -> AdaptiveOutput:
    torch.manual_seed(0)
    out = AdaptiveOutput(width, V, list(cutoffs), div_value, tied)
    counts = np.random.default_rng(0).permutation(np.arange(V) + 1)  # a frequency order far from the id order
    out.set_frequencies(counts)
    return out


def test_the_classes_are_sorted_by_training_frequency():
    counts = np.array([0, 5, 9, 5, 1])
    out = AdaptiveOutput.__new__(AdaptiveOutput)
    torch.nn.Module.__init__(out)
    out.register_buffer("order", torch.arange(5))
    out.register_buffer("rank", torch.arange(5))
    out.set_frequencies(counts)
    assert out.order.tolist() == [2, 1, 3, 4, 0]  # most frequent first, ties by token id
    assert out.rank.tolist() == [4, 1, 0, 2, 3]


def test_cutoffs_from_coverage_hold_each_share_of_the_targets():
    counts = np.array([50, 0, 30, 10, 5, 3, 2] + [0] * 10)  # 100 targets; sorted: 50 30 10 5 3 2 0 ...
    assert coverage_cutoffs(counts, [0.8, 0.9, 0.95]) == [2, 3, 4]
    assert coverage_cutoffs(counts, [0.5, 0.8]) == [1, 2]
    assert coverage_cutoffs(counts, [0.999]) == [6]


def test_nll_and_log_probs_agree_in_token_id_order_and_pads_count_nothing():
    out = output_layer()
    feats = torch.randn(30, 16)
    targets = torch.randint(0, V, (30,))
    targets[[3, 7]] = 5  # the "pad" id below
    logp = out.log_probs(feats)
    assert torch.allclose(logp.logsumexp(-1), torch.zeros(30), atol=1e-5)  # a distribution over the vocabulary
    keep = targets != 5
    expected = -logp[keep].gather(1, targets[keep, None]).sum()
    assert out.nll(feats, targets, ignore_index=5).item() == pytest.approx(expected.item(), rel=1e-6)
    # The same as the library module scoring the ranks directly.
    direct = -out.softmax(feats[keep], out.rank[targets[keep]]).output.sum()
    assert out.nll(feats, targets, 5).item() == pytest.approx(direct.item(), rel=1e-6)
    assert out.log_probs(feats.view(5, 6, 16)).shape == (5, 6, V)


@pytest.mark.parametrize("div_value, tied_tails", [(4.0, 0), (1.0, 2)])
def test_tying_shares_the_shortlist_and_the_clusters_as_wide_as_the_embedding(div_value, tied_tails):
    emb = torch.nn.Embedding(V, 16)
    out = output_layer(emb, div_value)
    sm = out.softmax
    shortlist = out.order[: sm.shortlist_size]
    head_rows = sm.head(torch.eye(16)).t()[: sm.shortlist_size] - sm.head.bias[: sm.shortlist_size, None]
    assert torch.allclose(head_rows, emb.weight[shortlist], atol=1e-6)  # the head's word rows are embedding rows
    tied = [i for i, (_, o) in enumerate(sm.tail) if type(o).__name__ == "TiedRows"]
    assert len(tied) == tied_tails
    feats, targets = torch.randn(40, 16), torch.randint(0, V, (40,))
    out.nll(feats, targets, -1).backward()
    assert emb.weight.grad is not None and emb.weight.grad[shortlist].abs().sum() > 0
    assert all(p.grad is not None for p in out.parameters() if p.requires_grad)
    own = sum(p.numel() for p in out.parameters())
    untied = sum(p.numel() for p in output_layer(None, div_value).parameters())
    assert untied - own == 16 * (sm.shortlist_size + sum(o.stop - o.start for _, o in sm.tail if hasattr(o, "stop")))


def test_bad_adaptive_settings_are_one_sentence():
    with pytest.raises(UserError, match=r"needs a large vocabulary .* this one has 120: use model.output=full\.$"):
        check_cutoffs([10], 120)
    with pytest.raises(UserError, match=r"adaptive_cutoffs=\[400, 100\] must be increasing token counts between 1 and"):
        check_cutoffs([400, 100], V)
    with pytest.raises(UserError, match=r"adaptive_cutoffs=\[100, 1199\] must be .* less 2 \(1,198\)"):
        check_cutoffs([100, 1199], V)
    with pytest.raises(UserError, match=r"adaptive_div_value=4 leaves the last of 3 clusters no width \(16 features"):
        AdaptiveOutput(16, V, [100, 200, 300], 4.0)
    for kwargs, match in (
        ({"output": "sampled"}, r"model.output=sampled is not known: use full \(the default\) or adaptive\."),
        ({"output": "adaptive", "adaptive_cutoffs": [50, 20]}, r"adaptive_cutoffs=\[50, 20\] must be increasing"),
        ({"output": "adaptive", "adaptive_coverage": [0.9, 1.5]}, r"adaptive_coverage=1.5 must be a number in \(0"),
        ({"output": "adaptive", "adaptive_div_value": 0.5}, r"adaptive_div_value=0.5 must be a number in \[1.0"),
    ):
        with pytest.raises(UserError, match=match):
            RNNLanguageModel(V, embed_size=16, hidden_size=16, **kwargs)


# -- the whole path -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zipf_corpus(tmp_path_factory) -> dict[str, str]:
    """~1,500 word types, Zipf-distributed, each word likely followed by its neighbours in rank."""
    rng, d = random.Random(0), tmp_path_factory.mktemp("zipf")
    words, weights = [f"w{i}" for i in range(1500)], [1 / (i + 1) for i in range(1500)]
    paths = {}
    for split, n in (("train", 2500), ("val", 200), ("test", 200)):
        lines = []
        for _ in range(n):
            first = rng.choices(range(1500), weights)[0]
            sent = [first + rng.choice((0, 1, 2)) * k for k in range(rng.randint(3, 12))]
            lines.append(" ".join(words[min(i, 1499)] for i in sent))
        paths[split] = d / f"{split}.txt"
        paths[split].write_text("\n".join(lines) + "\n")
    return {k: str(v) for k, v in paths.items()}


def overrides(corpus, *extra: str) -> list[str]:
    data = [f"data.{s}_path={corpus[s]}" for s in ("train", "val", "test")]
    return ["data=text", *data, "trainer=cpu", "model.embed_size=32", "model.hidden_size=32", "trainer.max_epochs=2",
            "model.output=adaptive", "model.adaptive_div_value=2", "callbacks.samples.max_len=5", *extra]  # fmt: skip


def test_a_run_trains_scores_and_generates_with_the_adaptive_softmax(zipf_corpus, tmp_path):
    from rnnlm.generation import GenerationConfig, Generator, load_model, score

    metrics = train_here(*overrides(zipf_corpus), run_dir=tmp_path / "run")
    ckpt = next((tmp_path / "run" / "checkpoints").glob("epoch*.ckpt"))
    model = load_model(str(ckpt), device="cpu")
    assert model.net.adaptive and model.net.decoder.cutoffs == model.hparams["model"]["adaptive_cutoffs"]
    assert model.net.decoder.order[0] == model.tokenizer.token_to_id("<eos>")  # the most frequent target
    # Scoring the validation file reproduces the run's val/ppl: the corpus perplexity is exact.
    lines = open(zipf_corpus["val"]).read().split("\n")
    got = score(model.net, model.tokenizer, [ln for ln in lines if ln.strip()], data_mode=model.data_mode)
    assert got.corpus_ppl == pytest.approx(metrics["val/ppl"], rel=1e-4)
    gen = Generator(model.net, model.tokenizer, model.data_mode)
    for strategy in ("greedy", "sample", "beam"):
        cfg = GenerationConfig(strategy, max_len=6, beam_size=3, seed=0)
        (result,) = gen.generate(["w3 w4"], num_samples=1, cfg=cfg)
        assert result.tokens and result.logprob < 0
        if strategy == "greedy":  # the first word is the most probable one of the adaptive distribution
            ids = [model.tokenizer.token_to_id(t) for t in ("<sos>", "w3", "w4")]
            with torch.no_grad():
                scores = model.net(torch.tensor([ids]))[0][0, -1]
            scores[[model.tokenizer.token_to_id(t) for t in ("<pad>", "<sos>")]] = float("-inf")
            assert result.tokens[0] == model.tokenizer.id_to_token(int(scores.argmax()))


def test_resuming_an_adaptive_run_keeps_its_cutoffs_and_order(zipf_corpus, tmp_path):
    first = train_here(*overrides(zipf_corpus, "trainer.max_epochs=1"), run_dir=tmp_path / "a")
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    resumed = train_here(*overrides(zipf_corpus), f"ckpt_path={last}", run_dir=tmp_path / "b")
    straight = train_here(*overrides(zipf_corpus), run_dir=tmp_path / "c")
    assert first["val/ppl"] > straight["val/ppl"]
    assert resumed["val/ppl"] == pytest.approx(straight["val/ppl"], rel=1e-6)
    with pytest.raises(UserError, match=r"model.adaptive_cutoffs=\[10, 20\] \(checkpoint: \[\d+, \d+"):
        train_here(
            *overrides(zipf_corpus), f"ckpt_path={last}", "model.adaptive_cutoffs=[10,20]", run_dir=tmp_path / "d"
        )


def test_too_small_a_vocabulary_for_adaptive_is_one_sentence(tiny_corpus, tmp_path):
    corpus = {k: str(v) for k, v in tiny_corpus.items()}
    with pytest.raises(UserError, match=r"model.output=adaptive needs a large vocabulary .* this one has 20:"):
        train_here(*overrides(corpus), run_dir=tmp_path / "run")


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_bf16_trains_the_adaptive_softmax_to_the_fp32_perplexity(zipf_corpus, tmp_path):
    fp32 = train_here(*overrides(zipf_corpus), run_dir=tmp_path / "fp32")
    bf16 = train_here(*overrides(zipf_corpus, "trainer.precision=bf16-mixed"), run_dir=tmp_path / "bf16")
    assert bf16["val/ppl"] == pytest.approx(fp32["val/ppl"], rel=0.03)

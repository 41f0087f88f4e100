"""The Kneser-Ney baseline: the vectorised estimate equals a brute-force one written from the formulas, n-gram by
n-gram; every context's distribution sums to one; `python -m rnnlm.ngram`'s run; its refusals; and on PTB the
published numbers (Mikolov 2012, Table 4.1: KN3 148.3, KN5 141.2)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from rnnlm.data.corpus import EncodedSplit
from rnnlm.errors import UserError
from rnnlm.ngram import KneserNey, Text
from rnnlm.ngram.run import run
from tests.conftest import compose_config, tiny_overrides

PAD, UNK, SOS, EOS = 0, 1, 2, 3
VOCAB = 50  # 4 specials and 46 words


def zipf_sentences(n: int, seed: int) -> list[list[int]]:
    """Words drawn by a Zipf law with a little memory (a word often follows its predecessor's neighbour), so every
    order has n-grams seen once, twice, three and four times: what the discounts need."""
    rng = random.Random(seed)
    words = list(range(UNK, VOCAB))
    words.remove(SOS), words.remove(EOS)
    weights = [1 / (rank + 1) ** 1.5 for rank in range(len(words))]
    out = []
    for _ in range(n):
        sentence = [rng.choices(words, weights)[0]]
        while len(sentence) < rng.randint(2, 9):
            near = words[(words.index(sentence[-1]) + 1) % len(words)]
            sentence.append(near if rng.random() < 0.3 else rng.choices(words, weights)[0])
        out.append(sentence)
    return out


TRAIN, HELD_OUT = zipf_sentences(400, 0), zipf_sentences(60, 1)


@pytest.fixture(scope="module")
def zipf_corpus(tmp_path_factory) -> dict[str, Path]:
    """The same sentences as text files (word i written w<i>), for runs of `python -m rnnlm.ngram`."""
    folder = tmp_path_factory.mktemp("zipf")
    paths = {}
    for split, sentences in (("train", TRAIN), ("val", HELD_OUT), ("test", zipf_sentences(60, 2))):
        paths[split] = folder / f"{split}.txt"
        paths[split].write_text("".join(" ".join(f"w{w}" for w in s) + "\n" for s in sentences))
    return paths


def fitted(order: int, cutoffs: list[int]) -> KneserNey:
    model = KneserNey(order, VOCAB, SOS, [PAD, SOS], cutoffs)
    return model.fit(Text.of(EncodedSplit.from_ids(TRAIN), SOS, EOS))


def brute_force(order: int, cutoffs: list[int]):
    """p(w | history) from the formulas (kneser_ney.py's docstring), with dictionaries of n-gram tuples."""
    raw = Counter()
    for s in TRAIN:
        seq = [SOS, *s, EOS]
        for end in range(1, len(seq)):
            for k in range(1, min(order, end + 1) + 1):
                raw[tuple(seq[end - k + 1 : end + 1])] += 1
    left = Counter(g[1:] for g in raw if len(g) > 1)  # distinct words seen before each shorter n-gram
    count = {g: c if len(g) == order or g[0] == SOS else left[g] for g, c in raw.items()}
    discounts = {}
    for k in range(1, order + 1):
        n = Counter(c for g, c in count.items() if len(g) == k)
        y = n[1] / (n[1] + 2 * n[2])
        discounts[k] = {1: 1 - 2 * y * n[2] / n[1], 2: 2 - 3 * y * n[3] / n[2], 3: 3 - 4 * y * n[4] / n[3]}
    predicted = [w for w in range(VOCAB) if w not in (PAD, SOS)]

    @cache
    def p(word: int, history: tuple[int, ...]) -> float:
        lower = p(word, history[1:]) if history else 1 / len(predicted)
        k = len(history) + 1
        after = {g[-1]: c for g, c in count.items() if len(g) == k and g[:-1] == history}
        total = sum(after.values())
        if not total:
            return lower
        d = discounts[k]
        gamma = sum(d[min(c, 3)] for c in after.values()) / total
        kept = [w for w, c in after.items() if c >= cutoffs[k - 1]]
        if word in kept:
            return (after[word] - d[min(after[word], 3)]) / total + gamma * lower
        shorter = (lambda w: p(w, history[1:])) if history else (lambda w: 1 / len(predicted))
        explicit = sum((after[w] - d[min(after[w], 3)]) / total + gamma * shorter(w) for w in kept)
        return (1 - explicit) / (1 - sum(shorter(w) for w in kept)) * lower

    return p


@pytest.mark.parametrize("order, cutoffs", [(1, [1]), (2, [1, 1]), (3, [1, 1, 1]), (3, [1, 1, 2]), (3, [2, 1, 3]),
                                            (4, [1, 1, 1, 2])])  # fmt: skip
def test_every_token_s_probability_equals_the_brute_force_estimate(order, cutoffs):
    model, p = fitted(order, cutoffs), brute_force(order, cutoffs)
    got = model.log_probs(Text.of(EncodedSplit.from_ids(HELD_OUT), SOS, EOS))
    expected = [math.log(p(w, tuple(seq[max(0, i - order + 1) : i]))) for s in HELD_OUT
                for seq in [[SOS, *s, EOS]] for i, w in enumerate(seq) if i > 0]  # fmt: skip
    assert len(got) == sum(len(s) + 1 for s in HELD_OUT)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    cut = fitted(order, [1] * order).levels[-1].kept - model.levels[-1].kept
    assert (cut > 0) == (cutoffs[-1] > 1)  # the cutoff did remove n-grams, or none was asked to


@pytest.mark.parametrize("cutoffs", [[1, 1, 1], [1, 2, 2], [2, 1, 3]])
def test_every_context_s_distribution_sums_to_one(cutoffs):
    model = fitted(3, cutoffs)
    histories = {tuple(s[:i]) for s in TRAIN for i in range(len(s) + 1)}
    histories |= {(UNK, UNK), (VOCAB - 1, VOCAB - 2, VOCAB - 3)}  # contexts the training text never had
    for history in histories:
        probs = model.distribution(list(history))
        predicted = [w for w in range(VOCAB) if w not in (PAD, SOS)]
        assert probs[[PAD, SOS]].tolist() == [0.0, 0.0] and (probs[predicted] > 0).all()
        assert abs(probs.sum() - 1) < 1e-12, history


def test_the_run_writes_the_sentence_level_perplexities_and_results(zipf_corpus, tmp_path, capsys):
    cfg = compose_config(*tiny_overrides(zipf_corpus)[1:], "order=3", run_dir=tmp_path, config="ngram")
    metrics = run(cfg)
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["metrics"] == metrics and results["level"] == "sentence" and results["cell"] == "kn3"
    lines = [len(s.split()) + 1 for s in zipf_corpus["test"].read_text().splitlines()]
    assert metrics["test/tokens"] == sum(lines)  # every word and <eos>
    assert 5 < metrics["test/ppl"] < 30 and metrics["test/ppl"] == pytest.approx(math.exp(metrics["test/loss"]))
    assert f"KN3 (sentence-level) val/ppl {metrics['val/ppl']:.2f} | test/ppl {metrics['test/ppl']:.2f}" in (
        capsys.readouterr().out
    )


def test_a_character_n_gram_reports_bits_per_character(tiny_corpus, tmp_path, capsys):
    chars = ["tokenizer=char", "order=4", "fallback_discounts=[0.5,1.0,1.5]"]  # few characters: some orders need it
    cfg = compose_config(*tiny_overrides(tiny_corpus)[1:], *chars, run_dir=tmp_path, config="ngram")
    metrics = run(cfg)
    assert metrics["test/bpc"] == pytest.approx(math.log2(metrics["test/ppl"]))
    assert f"| test/bpc {metrics['test/bpc']:.3f} |" in capsys.readouterr().out


def test_fallback_discounts_let_a_small_corpus_take_a_high_order(tiny_corpus, tmp_path, caplog):
    cfg = compose_config(*tiny_overrides(tiny_corpus)[1:], "order=9", "fallback_discounts=[0.5,1.0,1.5]",
                         run_dir=tmp_path, config="ngram")  # fmt: skip
    metrics = run(cfg)
    for line in ("unigrams: none is seen 1 time", "9-grams: none is seen", "take fallback_discounts=[0.5, 1.0, 1.5]"):
        assert line in caplog.text
    assert json.loads((tmp_path / "results.json").read_text())["discounts"][-1] == [0.5, 1.0, 1.5]
    assert 1 < metrics["test/ppl"] < 10


@pytest.mark.parametrize("overrides, message", [
    (["order=0"], r"^order=0 must be a positive integer\.$"),
    (["order=3", "cutoffs=[1,2]"], r"^cutoffs=\[1, 2\] must give one least count per order \(3 for order=3\), e\.g\."),
    (["order=2", "cutoffs=[1,0]"], r"^cutoffs=0 must be a positive integer\.$"),
    (["order=12"], r"^the training split's longest sentence has 9 tokens, too few for a 12-gram .*: use order=11 or"),
    (["order=3", "cutoffs=[1,1,500]"], r"^cutoffs keep the trigrams counted 500 times or more, and the most "
                                       r"frequent trigram counts \d+: lower the cutoff of order 3\.$"),
    (["order=9"], r"^the training split's 7-grams give no modified Kneser-Ney discounts: none is seen 3 times "
                  r"\(counting as Kneser-Ney does\); use more text, order=6 or fallback_discounts=\[0.5,1.0,1.5\]\.$"),
    (["fallback_discounts=[0.5,2.5,1.5]"], r"^fallback_discounts=2.5 must be a number in \(0.0, 2.0\]\.$"),
    (["splits=[dev]"], r"^splits=\['dev'\] must be a list of train, val, test"),
])  # fmt: skip
def test_bad_settings_are_refused_in_one_sentence(zipf_corpus, tmp_path, overrides, message):
    cfg = compose_config(*tiny_overrides(zipf_corpus)[1:], *overrides, run_dir=tmp_path, config="ngram")
    with pytest.raises(UserError, match=message):
        run(cfg)
    assert not (tmp_path / "results.json").exists()


@pytest.mark.parametrize("order, cutoffs, test_ppl", [(3, None, 148.28), (5, "[1,1,1,1,2]", 141.46)])
def test_penn_treebank_reproduces_mikolov_s_kneser_ney(tmp_path, order, cutoffs, test_ppl):
    """Mikolov (PhD thesis 2012, Table 4.1): KN3 148.3, KN5 141.2, from SRILM's `ngram-count -order 5 -kndiscount
    -interpolate -unk -gt3min 1 -gt4min 1` (so 5-grams seen once are cut: SRILM's gt5min is 2)."""
    overrides = [f"order={order}", *([f"cutoffs={cutoffs}"] if cutoffs else [])]
    metrics = run(compose_config(*overrides, run_dir=tmp_path, config="ngram"))
    assert metrics["test/ppl"] == pytest.approx(test_ppl, abs=0.005)
    assert metrics["test/tokens"] == 82_430  # every word and <eos> of PTB's test split

"""Generation and scoring from a checkpoint that a real (tiny) train.py run wrote."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.generation import GenerationConfig, Generator, load_model, score
from rnnlm.precision import cpu_has_bf16


@pytest.fixture(scope="module")
def gen(trained):
    model = load_model(trained / "checkpoints" / "last.ckpt", "cpu")
    return Generator(model.net, model.tokenizer)


def texts(results):
    return [r.text for r in results]


def test_greedy_is_deterministic_and_batch_invariant(gen):
    cfg = GenerationConfig("greedy", max_len=12)
    prompts = ["the cat", "a", "a dog ran", "the dog"]  # lengths differ: read in groups, returned in order
    together = gen.generate(prompts, 1, cfg)
    assert texts(together) == [t for p in prompts for t in texts(gen.generate([p], 1, cfg))]
    assert [r.prompt for r in together] == prompts
    assert all(r.settings == {"strategy": "greedy", "max_len": 12} for r in together)


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions (the fallback: test_precision.py)")
def test_bf16_sampling(gen):
    res = gen.generate(["the", "a dog"], 4, GenerationConfig("sample", seed=0, bf16=True))
    assert len(res) == 8 and all(math.isfinite(r.logprob) and r.settings["bf16"] for r in res)


def test_sampling_is_reproducible_with_a_seed(gen):
    a = gen.generate(["the"], 8, GenerationConfig("sample", seed=3))
    b = gen.generate(["the"], 8, GenerationConfig("sample", seed=3))
    c = gen.generate(["the"], 8, GenerationConfig("sample", seed=4))
    assert texts(a) == texts(b) and texts(a) != texts(c)
    assert len(set(texts(a))) > 1  # eight samples, not one repeated


@pytest.mark.parametrize(
    "cfg", [GenerationConfig("sample", top_k=1, seed=0), GenerationConfig("sample", top_p=1e-6, seed=0),
            GenerationConfig("beam", beam_size=1)]
)  # fmt: skip
def test_degenerate_settings_reduce_to_greedy(gen, cfg):
    greedy = gen.generate(["the", "a dog"], 1, GenerationConfig("greedy"))
    assert texts(gen.generate(["the", "a dog"], 1, cfg)) == texts(greedy)


def test_top_k_only_draws_from_the_k_best(gen):
    logp = gen._log_probs(gen._read_prompts(["the"], 1)[0])
    allowed = set(logp.topk(2, dim=-1).indices[0].tolist())
    cfg = GenerationConfig("sample", top_k=2, max_len=1, seed=0)
    firsts = {gen.tok.token_to_id(r.tokens[0]) if r.tokens else gen.ids["eos"] for r in gen.generate(["the"], 40, cfg)}
    assert firsts <= allowed and len(firsts) == 2


@pytest.mark.parametrize(
    "strategy, extra", [("sample", {}), ("sample", dict(temperature=0.7, top_k=6, top_p=0.9)), ("beam", {})]
)
def test_reported_logprob_equals_rescoring(gen, strategy, extra):
    # The model's own log-probability, whatever the temperature and filters used to choose.
    cfg = GenerationConfig(strategy, max_len=40, beam_size=4, seed=1, **extra)
    results = gen.generate([""], 4, cfg)
    finished = [r for r in results if 0 < len(r.tokens) < cfg.max_len]  # ended with <eos>
    assert finished
    rescored = score(gen.net, gen.tok, [r.text for r in finished])
    for r, lp in zip(finished, rescored.logprob):
        assert math.isclose(r.logprob, lp, rel_tol=1e-5), (r.text, r.logprob, lp)


def test_beam_returns_n_best_in_order(gen):
    res = gen.generate(["the"], 3, GenerationConfig("beam", beam_size=5, length_penalty=0.0))
    assert len(res) == 3 and [r.logprob for r in res] == sorted((r.logprob for r in res), reverse=True)
    greedy = gen.generate(["the"], 1, GenerationConfig("greedy", max_len=30))[0]
    assert res[0].logprob >= greedy.logprob - 1e-5  # beam search never does worse than greedy


def test_scoring_the_validation_split_reproduces_logged_val_ppl(trained, tiny_corpus):
    model = load_model(trained / "checkpoints" / "last.ckpt", "cpu")
    with open(trained / "csv" / "metrics.csv") as f:
        logged = [float(r["val/ppl"]) for r in csv.DictReader(f) if r.get("val/ppl")][-1]
    scored = score(model.net, model.tokenizer, tiny_corpus["val"].read_text().splitlines())
    assert math.isclose(scored.corpus_ppl, logged, rel_tol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(strategy="nucleus"), "strategy=nucleus is not known"),
        (dict(top_p=0.0), "top_p=0.0 must be in (0, 1]"),
        (dict(top_p=1.5), "top_p=1.5 must be in (0, 1]"),
        (dict(beam_size=0, strategy="beam"), "beam_size=0 must be at least 1"),
        (dict(temperature=0.0), "temperature=0.0 must be > 0 with strategy=sample"),
        (dict(top_k=-1), "top_k=-1 must be >= 0"),
    ],
)
def test_contradictory_settings_are_refused(gen, kwargs, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        gen.generate(["the"], 1, GenerationConfig(**kwargs))


def test_unknown_prompt_words_become_unk_with_a_warning(gen, caplog):
    with caplog.at_level("WARNING"):
        ids = gen.encode_prompt("the zebra quagga")
    assert ids[0] == gen.ids["sos"] and ids[2:] == [gen.ids["unk"]] * 2
    assert "zebra, quagga not in the vocabulary" in caplog.text


def test_empty_prompt_starts_from_sos(gen):
    assert gen.encode_prompt("") == [gen.ids["sos"]]
    assert gen.generate([""], 2, GenerationConfig("sample", seed=0))[0].prompt == ""


def test_generation_leaves_the_global_rng_alone(gen):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    gen.generate(["the"], 4, GenerationConfig("sample", seed=9))
    assert torch.equal(torch.rand(3), expected)

"""The cell-by-feature matrix: each new cell (qrnn, mogrifier, mingru, minlstm, transformer, window) works everywhere
the LSTM works.

For every cell: stream mode resumes mid-epoch exactly (its own state layout saved in the checkpoint); a
sentence-mode run is reproduced by eval.py; two DDP processes on the CPU equal a one-process evaluation;
bf16-mixed trains to fp32's perplexity with the recurrences kept in fp32; tied weights with the adaptive softmax
train, evaluate and generate; and a stream-trained model generates (greedy, sample, beam: one token at a time
with the state) text whose log-probability equals scoring it (the whole sentence at once).

Slow tier: `python -m pytest -m slow tests/test_cell_matrix.py`. Runs are the debug=tiny preset on the tiny
corpus (the adaptive softmax: a corpus of 1,200 word types of its own), in this process except DDP's.
"""

from __future__ import annotations

import json
import math
import random
import signal
from pathlib import Path

import pytest
import torch

from rnnlm.generation import GenerationConfig, Generator, load_model, score
from rnnlm.lifecycle.interrupt import TrainingInterrupted
from rnnlm.models.output import TiedRows
from rnnlm.precision import cpu_has_bf16
from tests.conftest import TINY_EVAL, eval_here, run_train, tiny_overrides, train_here
from tests.test_resume import signal_at

pytestmark = pytest.mark.slow

CELLS = ("qrnn", "mogrifier", "mingru", "minlstm", "transformer", "window")
# The Transformer: heads whose width (12 / 2) is even, a context (10) a few stream windows long, so the key/value
# memory slides, and a warm-up (500 steps by default) that fits runs of tens of steps.
EXTRA = {"transformer": ("model.heads=2", "model.context=10", "scheduler.warmup_steps=5")}
# Stream mode with an embedding narrower than the layers (12 vs 16): a QRNN's saved last input is told from its c.
STREAM = ("data.mode=stream", "data.bptt=6", "model.embed_size=12")
# The shape of each tensor of a cell's saved state after the ranks and the columns: (1, width) per tensor (h, c per
# layer for the Mogrifier; c and the last input, then c, for the QRNN: the first layer has window 2, the second
# window 1; h per layer for minGRU and minLSTM); the Transformer's filled slots (1,), then each layer's keys and
# values of the last context - 1 = 9 tokens, (9, 12 wide); the window's last context - 1 = 4 inputs (4, 12 wide).
STATE_SHAPES = {"qrnn": [(1, 16), (1, 12), (1, 16)], "mogrifier": [(1, 16)] * 4, "mingru": [(1, 16)] * 2,
                "minlstm": [(1, 16)] * 2, "transformer": [(1,), *[(9, 12)] * 4], "window": [(4, 12)]}  # fmt: skip
# The stream runs: four epochs at a higher rate than Adam's default, so greedy and beam write sentences, not <eos>.
STREAM_RUN = (*STREAM, "optim.lr=0.01", "trainer.max_epochs=4")
WINDOWS_PER_EPOCH = 17  # stream windows of 6 tokens in 16 columns of the tiny training split
STOP_AT = 2 * WINDOWS_PER_EPOCH + 8  # mid-way through the third epoch
MAX_LEN = 30
STRATEGIES = (  # (config, results asked for per prompt)
    (GenerationConfig("greedy", max_len=MAX_LEN), 1),
    (GenerationConfig("sample", max_len=MAX_LEN, seed=1), 4),
    (GenerationConfig("beam", max_len=MAX_LEN, beam_size=3), 3),
)


def results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def stream_overrides(corpus, cell: str, *extra: str) -> list[str]:
    return [*tiny_overrides(corpus), f"model={cell}", *EXTRA.get(cell, ()), *STREAM_RUN, *extra]


def shapes(cell: str, ranks: int, columns: int) -> list[tuple[int, ...]]:
    """The saved state's shapes: (ranks, first dimension, columns, rest) per tensor."""
    return [(ranks, s[0], columns, *s[1:]) for s in STATE_SHAPES[cell]]


def state_shapes(state: list[torch.Tensor]) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in state]


def forward_logprob(net, ids: list[int], n: int) -> float:
    """The log-probability of the last n of `ids` given those before them, from one forward call over them all."""
    if n == 0:
        return 0.0
    with torch.no_grad():
        logits, _ = net(torch.tensor([ids[:-1]]))
    logp = torch.log_softmax(logits[0].double(), dim=-1)
    return logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])][-n:].sum().item()


def generate_and_rescore(model, prompts: list[str]) -> dict[str, list]:
    """Every strategy's results for `prompts`, each checked against its log-probability recomputed over the
    whole sequence at once: score() of prompt and continuation less the prompt's own, where the result ended
    with <eos> (score counts a closing <eos>); the network's forward over the same tokens where it ran to
    max_len. Generation reads the prompt, then steps one token at a time carrying the state."""
    gen = Generator(model.net, model.tokenizer, model.data_mode)
    eos = model.tokenizer.token_to_id("<eos>")
    out = {}
    for cfg, n in STRATEGIES:
        out[cfg.strategy] = gen.generate(prompts, n, cfg)
        assert len(out[cfg.strategy]) == n * len(prompts)
        for r in out[cfg.strategy]:
            prompt = gen.encode_prompt(r.prompt)  # the start token, then the prompt's
            ids = [model.tokenizer.token_to_id(t) for t in r.tokens]
            finished = len(ids) < cfg.max_len
            sentence = " ".join(filter(None, (r.prompt, r.text)))
            if finished and sentence:
                scored = score(model.net, model.tokenizer, [sentence], data_mode=model.data_mode).logprob[0]
                expected = scored - forward_logprob(model.net, prompt, len(prompt) - 1)
            else:
                expected = forward_logprob(model.net, prompt + ids + [eos] * finished, len(ids) + finished)
            assert math.isclose(r.logprob, expected, rel_tol=1e-5), (cfg.strategy, r.prompt, r.text, expected)
    scored = [r for rs in out.values() for r in rs if 0 < len(r.tokens) < MAX_LEN]
    assert scored  # some result was written to its <eos> and checked against score()
    return out


@pytest.fixture(scope="module", params=CELLS)
def cell(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def stream_run(cell, tiny_corpus, tmp_path_factory) -> Path:
    """Four uninterrupted stream-mode epochs of the cell."""
    run_dir = tmp_path_factory.mktemp(f"stream_{cell}") / "run"
    train_here(*stream_overrides(tiny_corpus, cell), run_dir=run_dir)
    return run_dir


@pytest.fixture(scope="module")
def sentence_run(cell, tiny_corpus, tmp_path_factory) -> Path:
    """Two sentence-mode epochs of the cell (the default data mode), in fp32."""
    run_dir = tmp_path_factory.mktemp(f"sentences_{cell}") / "run"
    train_here(*tiny_overrides(tiny_corpus), f"model={cell}", *EXTRA.get(cell, ()), run_dir=run_dir)
    return run_dir


# -- 1. stream mode, resumed mid-epoch ---------------------------------------------------------------------
def test_stream_mode_resumes_mid_epoch_exactly_with_the_cells_state(cell, stream_run, tiny_corpus, tmp_path):
    overrides = stream_overrides(tiny_corpus, cell)
    with pytest.raises(TrainingInterrupted) as stop:
        train_here(*overrides, *signal_at(STOP_AT, signal.SIGTERM), run_dir=tmp_path / "a")
    last = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert stop.value.checkpoint == last
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == STOP_AT  # mid-epoch
    state = ckpt["rnnlm_stream_hidden"]  # each tensor (ranks, 1, columns, width)
    assert state_shapes(state) == shapes(cell, 1, 16)
    floats = state[1:] if cell == "transformer" else state  # the Transformer's first: its filled slots, counted
    assert all(t.dtype == torch.float32 and t.abs().sum() > 0 for t in floats)
    assert cell != "transformer" or state[0].tolist() == [[[9] * 16]]

    train_here(*overrides, f"ckpt_path={last}", run_dir=tmp_path / "b")
    whole = results(stream_run)
    for key in ("val/ppl", "test/ppl", "train/ppl"):
        assert results(tmp_path / "b")["metrics"][key] == pytest.approx(whole["metrics"][key], rel=1e-5), key

    # The check can fail: the same checkpoint with the state zeroed (the QRNN: only its saved last input, the
    # x_{t-1} of the first layer's convolution) resumes to other numbers.
    zeroed = [1] if cell == "qrnn" else range(len(state))
    for i in zeroed:
        state[i].zero_()
    torch.save(ckpt, tmp_path / "zeroed.ckpt")
    train_here(*overrides, f"ckpt_path={tmp_path / 'zeroed.ckpt'}", run_dir=tmp_path / "c")
    assert results(tmp_path / "c")["metrics"]["train/ppl"] != pytest.approx(whole["metrics"]["train/ppl"], rel=1e-5)


# -- 2. sentence mode, reproduced by eval.py -----------------------------------------------------------------
def test_sentence_mode_trains_and_eval_py_reproduces_val_and_test_ppl(cell, sentence_run, tiny_corpus, tmp_path):
    run = results(sentence_run)
    assert [h["epoch"] for h in run["history"]] == [0, 1] and run["cell"] == cell
    assert run["history"][1]["val/ppl"] < run["history"][0]["val/ppl"]
    both = [o for o in TINY_EVAL if not o.startswith("splits=")] + ["splits=[val,test]"]
    again = eval_here(run["best_checkpoint"], tiny_corpus, tmp_path / "eval", *both)
    assert again["test/ppl"] == pytest.approx(run["metrics"]["test/ppl"], rel=1e-5)
    assert again["val/ppl"] == pytest.approx(min(h["val/ppl"] for h in run["history"]), rel=1e-5)


# -- 3. DDP: two gloo processes on the CPU --------------------------------------------------------------------
def test_ddp_on_two_cpu_processes_equals_a_one_process_evaluation(cell, tiny_corpus, tmp_path):
    """Stream mode, so every rank's own state (the cell's layout) is gathered into the checkpoint."""
    run_dir = tmp_path / "run"
    ddp = ("trainer=ddp_cpu", "data.batch_size=8", "data.eval_batch_size=4", "trainer.max_epochs=1")
    run_train(*tiny_overrides(tiny_corpus, run_dir), f"model={cell}", *EXTRA.get(cell, ()), *STREAM, *ddp, cwd=tmp_path,
              timeout=120)  # fmt: skip
    run = results(run_dir)
    assert run["epochs"] == 1
    single = eval_here(run["best_checkpoint"], tiny_corpus, tmp_path / "eval", "data.mode=stream", "data.bptt=6",
                       "data.eval_batch_size=4", "splits=[val,test]", "trainer.accelerator=cpu")  # fmt: skip
    assert single["test/ppl"] == pytest.approx(run["metrics"]["test/ppl"], rel=1e-5)
    assert single["val/ppl"] == pytest.approx(run["metrics"]["val/ppl"], rel=1e-5)
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)[
        "rnnlm_stream_hidden"
    ]
    assert state_shapes(state) == shapes(cell, 2, 8)  # both ranks' 8 columns
    assert all(not torch.equal(t[0], t[1]) for t in state[cell == "transformer" :])  # each rank's own (not the count)


# -- 4. bf16-mixed -------------------------------------------------------------------------------------------
@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions")
def test_bf16_mixed_trains_to_fp32s_perplexity_with_the_recurrence_in_fp32(cell, sentence_run, tiny_corpus, tmp_path):
    bf16 = train_here(*tiny_overrides(tiny_corpus), f"model={cell}", *EXTRA.get(cell, ()),
                      "trainer.precision=bf16-mixed", run_dir=tmp_path)  # fmt: skip
    fp32 = results(sentence_run)["metrics"]["test/ppl"]
    assert math.isfinite(bf16["test/ppl"]) and bf16["test/ppl"] != fp32  # it did run in bf16
    assert bf16["test/ppl"] == pytest.approx(fp32, rel=0.05)

    net = load_model(results(tmp_path)["best_checkpoint"], "cpu").net
    tokens = torch.randint(4, net.embedding.num_embeddings, (3, 11), generator=torch.Generator().manual_seed(0))
    x = net.embedding(tokens).detach()
    with torch.no_grad():
        out32, state32 = net.rnn(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out, state = net.rnn(x)
            outputs, h, start = [], x, 0  # each layer on its own: a window from zeros, one token from its state
            for layer, parts in zip(getattr(net.rnn, "layers", []), getattr(net.rnn, "parts", [])):
                own = state[start] if parts == 1 else tuple(state[start : start + parts])
                start += parts
                h, _ = layer(h, None)
                outputs += [h, layer(h[:, -1:], own)[0]]
    if cell not in ("mogrifier", "transformer", "window"):  # the scan's cells: every output and state in fp32
        assert [t.dtype for t in (out, *outputs, *state)] == [torch.float32] * (1 + len(outputs) + len(state))
    if cell == "transformer":  # its output through the final layer norm (fp32), its keys and values in bf16
        assert out.dtype == torch.float32 and {s.dtype for s in state[1:]} == {torch.bfloat16}
    if cell == "window":  # its output from the tanh layer (bf16), its state the embeddings as they came (fp32)
        assert out.dtype == torch.bfloat16 and state.dtype == torch.float32
    torch.testing.assert_close(out.float(), out32, rtol=0.02, atol=0.02 * out32.abs().max().item())
    for s, s32 in zip(state, state32):
        torch.testing.assert_close(s.float(), s32.float(), rtol=0.02, atol=0.02 * s32.abs().max().item())


# -- 5. tied weights with the adaptive softmax ---------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_corpus(tmp_path_factory) -> dict[str, Path]:
    """1,200 word types (the adaptive softmax wants at least 1,000), each in the training split, Zipf-distributed,
    each word likely followed by its neighbours in rank."""
    rng, d = random.Random(0), tmp_path_factory.mktemp("wide")
    words, weights = [f"w{i}" for i in range(1200)], [1 / (i + 1) for i in range(1200)]

    def zipf(n: int) -> list[str]:
        lines = []
        for _ in range(n):
            first = rng.choices(range(1200), weights)[0]
            lines.append(" ".join(words[min(first + k, 1199)] for k in range(rng.randint(2, 8))))
        return lines

    every = [" ".join(words[i : i + 8]) for i in range(0, 1200, 8)]
    paths = {}
    for split, lines in (("train", every + zipf(250)), ("val", zipf(40)), ("test", zipf(40))):
        paths[split] = d / f"{split}.txt"
        paths[split].write_text("\n".join(lines) + "\n")
    return paths


def test_tied_weights_with_the_adaptive_softmax_train_evaluate_and_generate(cell, wide_corpus, tmp_path):
    adaptive = ("model.tie_weights=true", "model.output=adaptive", "model.adaptive_cutoffs=[100,400]",
                "model.adaptive_div_value=1", "callbacks.samples.max_len=5")  # fmt: skip
    metrics = train_here(*tiny_overrides(wide_corpus), f"model={cell}", *EXTRA.get(cell, ()), *adaptive,
                         run_dir=tmp_path / "run")  # fmt: skip
    run = results(tmp_path / "run")
    assert run["history"][1]["val/ppl"] < run["history"][0]["val/ppl"] < 1204  # it learns (1,204: uniform)
    best = run["best_checkpoint"]
    again = eval_here(best, wide_corpus, tmp_path / "eval", *TINY_EVAL)
    assert again["test/ppl"] == pytest.approx(metrics["test/ppl"], rel=1e-5)

    model = load_model(best, "cpu")
    net, sm = model.net, model.net.decoder.softmax
    assert net.adaptive and model.tokenizer.get_vocab_size() == 1204 and net.decoder.cutoffs == [100, 400]
    # Tied: the head's shortlist rows and both clusters' rows are the embedding's rows of those words.
    emb, order = net.embedding.weight, net.decoder.order
    feats = torch.randn(5, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        head = sm.head(feats)[:, :100] - sm.head.bias[:100]
        torch.testing.assert_close(head, feats @ emb[order[:100]].T)
        for (projection, rows), start, stop in zip(sm.tail, (100, 400), (400, 1204)):
            assert isinstance(rows, TiedRows)
            torch.testing.assert_close(rows(projection(feats)), projection(feats) @ emb[order[start:stop]].T)
    assert Generator(net, model.tokenizer).encode_prompt("") == [model.tokenizer.token_to_id("<sos>")]
    generate_and_rescore(model, ["", "w3", "w10 w11"])


# -- 6. generation from a stream-trained checkpoint ----------------------------------------------------------
def test_stream_generation_greedy_sample_and_beam_equal_scoring(cell, stream_run):
    model = load_model(results(stream_run)["best_checkpoint"], "cpu")
    assert model.data_mode == "stream" and model.net.cell == cell
    gen = Generator(model.net, model.tokenizer, model.data_mode)
    assert gen.encode_prompt("the") == [model.tokenizer.token_to_id(t) for t in ("<eos>", "the")]
    out = generate_and_rescore(model, ["", "the"])
    for strategy, generated in out.items():  # each strategy stepped on from a carried state
        assert max(len(r.tokens) for r in generated) >= 2, strategy

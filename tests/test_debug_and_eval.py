"""The debug presets (`debug=...`), `callbacks=none`, and `eval.py`, run here on the tiny corpus."""

from __future__ import annotations

import json

import lightning as L
import pytest

from rnnlm.run.evaluate import evaluate
from tests.conftest import compose_config, make_sentences, tiny_overrides, train_here


def with_preset(preset: str, corpus) -> list[str]:
    """A debug preset on the tiny corpus (and the tiny model, so it takes seconds)."""
    tiny = [o for o in tiny_overrides(corpus) if o != "debug=tiny"]
    return [f"debug={preset}", *tiny, "model.embed_size=16", "model.hidden_size=16", "data.batch_size=16"]


def test_fdr_runs_one_batch_of_each_stage(tiny_corpus, tmp_path):
    metrics = train_here(*with_preset("fdr", tiny_corpus), run_dir=tmp_path / "run")
    assert {"train/loss", "val/ppl", "test/ppl"} <= set(metrics)
    assert not list((tmp_path / "run").rglob("epoch*.ckpt"))  # no best checkpoints: one batch is no epoch


def test_limit_runs_three_short_epochs(tiny_corpus, tmp_path):
    fractions = ["trainer.limit_train_batches=0.1", "trainer.limit_val_batches=0.25", "trainer.limit_test_batches=0.25"]
    train_here(*with_preset("limit", tiny_corpus), *fractions, run_dir=tmp_path / "run")  # PTB's shares: too few here
    history = json.loads((tmp_path / "run" / "results.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2]


class Batches(L.Callback):
    def __init__(self) -> None:
        self.seen: list[list] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.seen.append([])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen[-1].append(batch.inputs.tolist())


def test_overfit_learns_the_same_three_batches_every_epoch(tiny_corpus, tmp_path, monkeypatch):
    from rnnlm.training import build

    recorder, real_build_trainer = Batches(), build.build_trainer

    def with_recorder(*args, **kwargs):
        trainer = real_build_trainer(*args, **kwargs)
        trainer.callbacks.append(recorder)
        return trainer

    monkeypatch.setattr(build, "build_trainer", with_recorder)
    metrics = train_here(*with_preset("overfit", tiny_corpus), "trainer.max_epochs=40", "optim.lr=0.03",
                         run_dir=tmp_path / "run")  # fmt: skip
    assert len(recorder.seen) == 40 and all(len(e) == 3 and e == recorder.seen[0] for e in recorder.seen)
    history = json.loads((tmp_path / "run" / "results.json").read_text())["history"]
    # Training perplexity falls from ~19 to the floor those short sentences allow (~2.2), while the
    # validation batches, unseen, get worse again after their best: the signature of overfitting.
    assert history[0]["train/ppl"] > 15 and metrics["train/ppl"] < 2.5
    assert history[-1]["val/ppl"] > 1.3 * min(h["val/ppl"] for h in history)


def test_profiler_writes_where_the_time_went(tiny_corpus, tmp_path):
    train_here(*with_preset("profiler", tiny_corpus), run_dir=tmp_path / "run")
    report = (tmp_path / "run" / "fit-profile.txt").read_text()
    assert "FIT Profiler Report" in report and "run_training_batch" in report


def test_default_debug_run_is_one_epoch_with_anomaly_detection(tiny_corpus, tmp_path):
    cfg = compose_config(*with_preset("default", tiny_corpus), run_dir=tmp_path / "run")
    assert cfg.trainer.detect_anomaly and cfg.task_name == "debug"
    train_here(*with_preset("default", tiny_corpus), run_dir=tmp_path / "run")
    assert len(json.loads((tmp_path / "run" / "results.json").read_text())["history"]) == 1


def test_callbacks_none_trains_tests_and_keeps_the_history(tiny_corpus, tmp_path):
    run_dir = tmp_path / "run"
    metrics = train_here(*tiny_overrides(tiny_corpus), "callbacks=none", run_dir=run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    assert [h["epoch"] for h in results["history"]] == [0, 1] and "test/ppl" in metrics
    assert not (run_dir / "samples.txt").exists()  # no configured callback ran
    assert results["metrics"]["val/ppl"] == pytest.approx(15.93, rel=0.01)  # the same training as with them


def eval_here(*overrides: str, run_dir) -> dict[str, float]:
    return evaluate(compose_config(*overrides, run_dir=run_dir, config="eval"))


def data_of(corpus) -> list[str]:
    return ["data=text", *(f"data.{s}_path={corpus[s]}" for s in ("train", "val", "test"))]


def test_eval_reproduces_the_trained_numbers(trained, tiny_corpus, tmp_path, capsys):
    ckpt = trained / "checkpoints" / "last.ckpt"
    metrics = eval_here(f"ckpt_path={ckpt}", *data_of(tiny_corpus), run_dir=tmp_path / "eval")
    history = json.loads((trained / "results.json").read_text())["history"]
    assert metrics["val/ppl"] == pytest.approx(history[-1]["val/ppl"], rel=1e-5)
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["checkpoint"] == str(ckpt) and results["metrics"] == metrics
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        f"val/ppl {metrics['val/ppl']:.2f} | test/ppl {metrics['test/ppl']:.2f} | checkpoint {ckpt}"
    )


def test_eval_on_other_data_with_the_checkpoints_vocabulary(trained, tiny_corpus, tmp_path):
    other = tmp_path / "other.txt"
    other.write_text("\n".join(make_sentences(30, 9) + ["the zebra sat"]) + "\n")  # one word it never saw
    overrides = ["data=text", f"data.train_path={tiny_corpus['train']}", f"data.test_path={other}", "splits=[test]"]
    metrics = eval_here(f"ckpt_path={trained / 'checkpoints' / 'last.ckpt'}", *overrides, run_dir=tmp_path / "eval")
    assert set(metrics) == {"test/loss", "test/ppl"}
    from rnnlm.generation import load_model, score

    model = load_model(trained / "checkpoints" / "last.ckpt", "cpu")
    scored = score(model.net, model.tokenizer, other.read_text().splitlines())
    assert metrics["test/ppl"] == pytest.approx(scored.corpus_ppl, rel=1e-4)  # "zebra" read as <unk> by both


def test_eval_names_a_bad_split(trained, tiny_corpus, tmp_path):
    from rnnlm.errors import UserError

    with pytest.raises(UserError, match=r"splits=\['train'\] must name val and/or test, e.g. splits=\[test\]."):
        eval_here(f"ckpt_path={trained / 'checkpoints' / 'last.ckpt'}", *data_of(tiny_corpus), "splits=[train]",
                  run_dir=tmp_path / "eval")  # fmt: skip

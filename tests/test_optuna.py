"""hparams_search=optuna for real on a tiny corpus: trials run, the best is reported, the study survives."""

from __future__ import annotations

import json

import optuna
import pytest
import yaml

from tests.conftest import run_train, tiny_overrides

pytestmark = pytest.mark.slow  # real processes: the slow tier (CI runs it)

TINY_SEARCH = """\
# @package _global_
defaults:
  - optuna
hydra:
  sweeper:
    n_trials: 3
    params:
      model.hidden_size: choice(8, 16)
      model.embed_size: choice(8, 16)
      model.num_layers: choice(1, 2)
"""


def test_optuna_search_of_three_trials_and_a_continued_study(tiny_corpus, tmp_path):
    # A search space of one's own: a config next to the project's, found through hydra.searchpath.
    (tmp_path / "conf" / "hparams_search").mkdir(parents=True)
    (tmp_path / "conf" / "hparams_search" / "tiny.yaml").write_text(TINY_SEARCH)
    # (sizes left to the search: a size given on the command line would fix it for every trial)
    single = [o for o in tiny_overrides(tiny_corpus, tmp_path) if not o.startswith(("hydra.run.dir", "model."))]
    args = [*single, "hparams_search=tiny", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "trainer.max_epochs=1"]

    run_train(*args, f"hydra.sweep.dir={tmp_path / 'first'}", cwd=tmp_path)
    trials = sorted((tmp_path / "first").glob("[0-9]*/results.json"))
    assert len(trials) == 3
    val = [json.loads(p.read_text())["metrics"]["val/ppl"] for p in trials]
    best = yaml.safe_load((tmp_path / "first" / "optimization_results.yaml").read_text())
    assert best["best_value"] == min(val)  # train.py returned each trial's val/ppl to the sweeper
    assert set(best["best_params"]) == {"optim.lr", "model.cell", "model.hidden_size", "model.embed_size",
                                        "model.num_layers", "model.dropout"}  # fmt: skip

    # The study lives in outputs/optuna/*.db: running the command again continues it (as after a crash).
    run_train(*args, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={tmp_path / 'again'}", cwd=tmp_path)
    (db,) = (tmp_path / "outputs" / "optuna").glob("*.db")
    study = optuna.load_study(study_name="rnnlm-train", storage=f"sqlite:///{db}")
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)

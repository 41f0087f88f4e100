"""model.params: the widths that meet a parameter count, so cells compare at equal size."""

from __future__ import annotations

import pytest
import torch

from rnnlm.errors import UserError
from rnnlm.models.budget import count, fit_budget, parse_count
from rnnlm.models.rnn_lm import RNNLanguageModel
from tests.conftest import tiny_overrides, train_here

PTB_VOCAB = 10_000
TIED_LSTM = {"cell": "lstm", "tie_weights": True}  # the 2x200 tied LSTM: 2,653,200 parameters over PTB


def test_counts_are_read_as_users_write_them():
    assert [parse_count("k", v) for v in (2600000, 2.6e6, "2.6M", "650K", "650k", "1.5e6", "1G")] == [
        2_600_000, 2_600_000, 2_600_000, 650_000, 650_000, 1_500_000, 10**9]  # fmt: skip
    for bad in ("2.6X", "", "-5", 0, True):
        with pytest.raises(UserError, match=r"is not a parameter count: give one such as 2600000, 2.6M or 650K\.$"):
            parse_count("model.params", bad)


@pytest.mark.parametrize("cell, width", [("lstm", 200), ("gru", 211), ("rnn", 241), ("qrnn", 220),
                                         ("mogrifier", 180), ("mingru", 241), ("minlstm", 232)])  # fmt: skip
def test_each_cell_meets_the_tied_lstms_count_within_5_percent(cell, width):
    target = count(TIED_LSTM, PTB_VOCAB, 200)
    assert target == 2_653_200
    sized = fit_budget({"cell": cell, "tie_weights": True, "params": "2.65M"}, PTB_VOCAB)
    assert sized["hidden_size"] == sized["embed_size"] == width
    net = RNNLanguageModel(PTB_VOCAB, **sized)
    got = sum(p.numel() for p in net.parameters())
    assert abs(got - 2_650_000) <= 0.05 * 2_650_000
    # No other width comes nearer: one step either way is farther from the budget.
    assert all(abs(count(sized, PTB_VOCAB, w) - 2_650_000) >= abs(got - 2_650_000) for w in (width - 1, width + 1))


def test_untied_only_the_hidden_size_scales():
    sized = fit_budget({"cell": "mingru", "embed_size": 200, "params": "5M"}, PTB_VOCAB)
    assert sized["embed_size"] == 200 and sized["hidden_size"] > 200
    assert RNNLanguageModel(PTB_VOCAB, **{**sized, "params": None}).settings.hidden_size == sized["hidden_size"]


def test_the_constructor_meets_a_budget_itself():
    net = RNNLanguageModel(PTB_VOCAB, "qrnn", tie_weights=True, params="2.65M")
    assert net.settings.hidden_size == 220 and net.embedding.embedding_dim == 220


def test_a_budget_no_width_can_meet_names_the_nearest_count():
    smallest = count({"cell": "lstm", "tie_weights": True}, PTB_VOCAB, 1)
    with pytest.raises(UserError) as err:
        fit_budget({"cell": "lstm", "tie_weights": True, "params": 1000}, PTB_VOCAB)
    assert str(err.value) == (
        f"model.params=1000 cannot be met within 5% by model=lstm over 10,000 words: the nearest is {smallest:,} "
        f"parameters (model.hidden_size=1, model.embed_size=1); set model.params={smallest} or more."
    )
    with pytest.raises(UserError, match=r"^model.params scales one width for every layer, not model.hidden_size"):
        fit_budget({"cell": "lstm", "hidden_size": [300, 200], "num_layers": 2, "params": "3M"}, PTB_VOCAB)


def test_a_run_with_a_budget_prints_saves_and_resumes_its_widths(tiny_corpus, tmp_path, caplog):
    run = [*tiny_overrides(tiny_corpus), "model=minlstm", "model.params=6K", "model.tie_weights=true"]
    caplog.set_level("INFO", logger="rnnlm")
    train_here(*run, "trainer.max_epochs=1", run_dir=tmp_path / "a")
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=False)
    saved = ckpt["hyper_parameters"]["model"]
    total = sum(v.numel() for k, v in ckpt["state_dict"].items() if k.startswith("net.") and "decoder.weight" not in k)
    assert saved["params"] == "6K" and saved["hidden_size"] == saved["embed_size"] != 16
    assert abs(total - 6000) <= 300
    assert f"model.params=6K: model.hidden_size={saved['hidden_size']}" in caplog.text
    assert f"{total:,} parameters" in caplog.text  # the summary's count is the budget's
    resumed = train_here(*run, "trainer.max_epochs=2", f"ckpt_path={tmp_path / 'a/checkpoints/last.ckpt'}",
                         run_dir=tmp_path / "b")  # fmt: skip
    whole = train_here(*run, "trainer.max_epochs=2", run_dir=tmp_path / "c")
    assert resumed["test/ppl"] == pytest.approx(whole["test/ppl"], rel=1e-5)
    with pytest.raises(UserError, match=r"model.params='7K' \(checkpoint: '6K'\)"):
        train_here(*run[:-2], "model.params=7K", "model.tie_weights=true", "trainer.max_epochs=2",
                   f"ckpt_path={tmp_path / 'a/checkpoints/last.ckpt'}", run_dir=tmp_path / "d")  # fmt: skip

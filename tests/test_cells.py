"""A cell's settings are declared once (rnnlm.models.settings) and everything reads them: the YAML, the config
check, the resume comparison; and a new cell is one file, its YAML and one registry line, shown by a toy cell
registered here from outside the package (its YAML in a config folder of the test's own)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from torch import nn

from rnnlm.errors import UserError
from rnnlm.generation import GenerationConfig, Generator, load_model
from rnnlm.models.cells import REGISTRY, cell_class, network_settings
from rnnlm.models.cells.base import Cell
from rnnlm.models.settings import NetworkSettings, positive, setting
from rnnlm.run.config_checks import check_resume
from rnnlm.run.evaluate import evaluate
from tests.conftest import ROOT, compose_config, tiny_overrides, train_here

MODELS = sorted(p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))


@pytest.mark.parametrize("name", MODELS)
def test_each_model_yaml_holds_its_cells_declared_settings_and_defaults(name):
    model = dict(compose_config(f"model={name}").model)
    assert model["cell"] == name
    settings = cell_class(name).Settings
    assert sorted(model) == sorted(settings.names())
    assert {k: v for k, v in model.items() if k != "cell"} == {
        k: v for k, v in settings.defaults().items() if k != "cell"
    }


def test_every_registered_cell_has_a_yaml():
    assert sorted(REGISTRY) == MODELS


def test_a_setting_of_another_cell_is_refused_in_one_sentence():
    with pytest.raises(UserError, match=r"^model.nonlinearity applies to the rnn and vanilla cells only: drop it for"):
        network_settings({"cell": "gru", "nonlinearity": "tanh"})


def test_the_resume_comparison_reads_the_declared_structural_settings(trained):
    checkpoint = torch.load(next((trained / "checkpoints").glob("last.ckpt")), weights_only=False)
    for override, changed in (("model.dropout=0.5", False), ("model.weight_drop=0.3", False),
                              ("model.num_layers=3", True), ("model.locked_dropout=true", True)):  # fmt: skip
        cfg = compose_config(*tiny_overrides({"train": "x", "val": "x", "test": "x"}), "trainer.max_epochs=9", override)
        if changed:
            with pytest.raises(UserError, match=override.split("=")[0]):
                check_resume(cfg, checkpoint, "last.ckpt")
        else:
            check_resume(cfg, checkpoint, "last.ckpt")


# A cell from outside the package: h_t = tanh(W x_t + u * h_{t-1}), an elementwise recurrence. Its width is
# hidden_size, as every cell names it, so presets such as debug=tiny size it too.
@dataclasses.dataclass(kw_only=True)
class ToySettings(NetworkSettings):
    hidden_size: int = setting(12, positive, structural=True)  # the name every cell gives its output's width

    @property
    def output_size(self) -> int:
        return self.hidden_size


class Toy(Cell):
    Settings = ToySettings

    def __init__(self, settings: ToySettings, input_size: int) -> None:
        super().__init__()
        self.inp = nn.Linear(input_size, settings.hidden_size)
        self.u = nn.Parameter(torch.full((settings.hidden_size,), 0.5))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None):
        h = x.new_zeros(x.shape[0], self.u.numel()) if state is None else state[0]
        drive, outputs = self.inp(x), []
        for t in range(x.shape[1]):
            h = torch.tanh(drive[:, t] + self.u * h)
            outputs.append(h)
        return torch.stack(outputs, 1), h[None]  # the state keeps the batch on dimension 1


TOY_YAML = """\
cell: toy
embed_size: 16
hidden_size: 16
dropout: 0.1
dropout_input: null
dropout_output: null
dropout_embed: 0.0
locked_dropout: false
linear_hidden_sizes: []
tie_weights: true
init_range: null
output: full
adaptive_cutoffs: null
adaptive_coverage: [0.9, 0.95, 0.99]
adaptive_div_value: 4.0
"""


@pytest.fixture
def toy_cell(tmp_path, monkeypatch) -> list[str]:
    """The registry line and the YAML a user adds; the overrides that select it."""
    monkeypatch.setitem(REGISTRY, "toy", Toy)
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "toy.yaml").write_text(TOY_YAML)
    return [f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "model=toy"]


def test_a_registered_toy_cell_trains_in_stream_mode_resumes_and_generates(toy_cell, tiny_corpus, tmp_path):
    stream = [*tiny_overrides(tiny_corpus), *toy_cell, "data.mode=stream", "data.bptt=6"]
    first = train_here(*stream, "trainer.max_epochs=1", run_dir=tmp_path / "a")
    resumed = train_here(*stream, "trainer.max_epochs=2", f"ckpt_path={tmp_path / 'a/checkpoints/last.ckpt'}",
                         run_dir=tmp_path / "b")  # fmt: skip
    whole = train_here(*stream, "trainer.max_epochs=2", run_dir=tmp_path / "c")
    assert resumed["test/ppl"] == pytest.approx(whole["test/ppl"], rel=1e-5)
    assert abs(first["test/ppl"] - whole["test/ppl"]) > 0.1  # the second epoch did train
    best = next(Path(tmp_path / "c" / "checkpoints").glob("epoch*.ckpt"))
    data = ["data=text", *(f"data.{s}_path={tiny_corpus[s]}" for s in ("train", "val", "test")),
            "data.eval_batch_size=16", "data.bptt=6", "data.mode=stream"]  # fmt: skip
    again = evaluate(compose_config(f"ckpt_path={best}", *data, *toy_cell[:1], run_dir=tmp_path / "e", config="eval"))
    assert again["test/ppl"] == pytest.approx(whole["test/ppl"], rel=1e-5)  # eval.py reads the cell back
    model = load_model(best)
    assert isinstance(model.net.rnn, Toy) and model.net.decoder.weight is model.net.embedding.weight
    out = Generator(model.net, model.tokenizer, "stream").generate(["the cat"], 1, GenerationConfig(max_len=5))
    assert len(out[0].tokens) == 5


def test_a_toy_cell_refuses_the_recurrent_cells_settings(toy_cell, tiny_corpus, tmp_path):
    others = "rnn, gru, lstm, vanilla, qrnn, mogrifier, mingru, minlstm and transformer"
    with pytest.raises(UserError, match=rf"model.num_layers applies to the {others} cells only"):
        train_here(*tiny_overrides(tiny_corpus), *toy_cell, "+model.num_layers=2", run_dir=tmp_path)

"""`from rnnlm import ...`: the public names, each the object at its home, imported only when first used."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

import pytest

import rnnlm
from rnnlm.moved import MOVED
from tests.conftest import ROOT

HOMES = {
    "LanguageModel": "rnnlm.training.lightning_module",
    "load_model": "rnnlm.models.trained",
    "Generator": "rnnlm.generation.search",
    "GenerationConfig": "rnnlm.generation.search",
    "score": "rnnlm.generation.scoring",
    "train": "rnnlm.run.train",
    "evaluate": "rnnlm.run.evaluate",
    "RNNLanguageModel": "rnnlm.models.rnn_lm",
    "UserError": "rnnlm.errors",
}


def test_the_public_import_line_works():
    from rnnlm import (  # noqa: F401
        GenerationConfig,
        Generator,
        LanguageModel,
        RNNLanguageModel,
        UserError,
        evaluate,
        load_model,
        score,
        train,
    )


@pytest.mark.parametrize("name", sorted(HOMES))
def test_each_name_is_the_object_at_its_home(name):
    assert getattr(rnnlm, name) is getattr(importlib.import_module(HOMES[name]), name)


def test_all_and_dir_list_the_public_names():
    assert set(rnnlm.__all__) == {*HOMES, "__version__"}
    assert set(rnnlm.__all__) <= set(dir(rnnlm))
    assert rnnlm.__version__


def test_the_generation_package_gives_the_same_objects():
    from rnnlm.generation import GenerationConfig, Generator, load_model, score

    assert (GenerationConfig, Generator, load_model, score) == (
        rnnlm.GenerationConfig, rnnlm.Generator, rnnlm.load_model, rnnlm.score
    )  # fmt: skip


def test_an_unknown_name_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no_such_thing"):
        rnnlm.no_such_thing  # noqa: B018
    with pytest.raises(ImportError, match="no_such_thing"):
        from rnnlm import no_such_thing  # noqa: F401


def test_importing_rnnlm_imports_neither_torch_nor_lightning_nor_hydra():
    """Hydra imports rnnlm through the launcher plugins at every start: the package itself must stay light."""
    code = "import json, sys, rnnlm; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    heavy = {"torch", "lightning", "pytorch_lightning", "hydra", "omegaconf", "tokenizers"}
    loaded = {m.split(".")[0] for m in json.loads(proc.stdout)}
    assert loaded & heavy == set()


def expand(path: str) -> list[str]:
    """`a.{b,c}` -> [`a.b`, `a.c`], as the README's table abbreviates module lists."""
    head, _, names = path.partition("{")
    return [head + name.strip() for name in names.rstrip("}").split(",")] if names else [path]


def test_the_readmes_what_moved_table_is_the_moved_table():
    section = (ROOT / "README.md").read_text().split("## What moved in 0.2\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|$", section, re.M)
    shown = {old: new for a, b in rows for old, new in zip(expand(a), expand(b), strict=True)}
    assert shown == MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_path_imports_the_new_module_with_a_deprecation_warning(old, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)  # as in a fresh process, where the finder is asked
    with pytest.warns(DeprecationWarning, match=re.escape(f"{old} has moved to {MOVED[old]}")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])

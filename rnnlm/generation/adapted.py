"""Scoring with adaptation (generate.py score_path=... adapt=dynamic|cache|both): the lines read in order at batch
size 1 as one document, the model adapting as it reads (rnnlm.adapt), with the settings given (there is no
validation text to tune them on: take the ones eval.py's search chose, from its results.json).

carry_state=true reads the lines as one stream (each + <eos>, the state carried, the first token context only);
false reads each line from its start token with the state reset, while the adapted weights and the cache's memory
run on across lines. The rms rule reads the statistics that eval.py saved beside the checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlm.adapt.dynamic import check_statistics
from rnnlm.adapt.reading import reading
from rnnlm.adapt.search import adapted_and_static
from rnnlm.adapt.settings import adapt_settings
from rnnlm.adapt.statistics import load_or_gather
from rnnlm.data.corpus import EncodedSplit
from rnnlm.data.tokenizer import sentence_start
from rnnlm.errors import UserError
from rnnlm.generation.scoring import Scores
from rnnlm.models.trained import TrainedModel


def score_adapted(model: TrainedModel, ckpt_path: str, lines: list[str], carry_state: bool, columns: int,
                  adapt: dict[str, Any]) -> tuple[Scores, str]:  # fmt: skip
    """Each line's log-probability under the adapting model, and a note of what adapted and the static ppl."""
    settings = adapt_settings(adapt)
    if columns != 1:
        raise UserError(
            f"columns={columns}: adapt={'+'.join(settings.methods)} reads the lines in order in one column; "
            "drop columns (or set 1)."
        )
    sentences = [s.strip() for s in lines if s.strip()]
    if not sentences:
        raise UserError("there is nothing to score: give at least one non-blank sentence.")
    layout = "stream" if carry_state else "sentences"
    start = sentence_start(model.data_mode)
    ms = None
    if settings.dynamic and settings.rule == "rms":
        ms = load_or_gather(ckpt_path, model.net, None, model.ids, model.data_mode, start, settings)  # as trained
        check_statistics(settings, ms, "none were saved beside the checkpoint for these settings")
    encoded = [e.ids for e in model.tokenizer.encode_batch(sentences, add_special_tokens=False)]
    split = EncodedSplit.from_ids(encoded)
    text = reading(split, model.ids, layout, start)
    if len(text) < 1:
        raise UserError("carry_state=true scores every token after the first: give more than one token to score.")
    adapted, base = adapted_and_static(model.net, text, settings, ms)
    logprob = -np.bincount(text.line, weights=adapted.nll, minlength=len(sentences))
    tokens = np.bincount(text.line, minlength=len(sentences))
    note = f"adapt={'+'.join(settings.methods)}; static, in the same reading: {base.ppl:.4f}"
    return Scores(sentences, logprob, tokens), note

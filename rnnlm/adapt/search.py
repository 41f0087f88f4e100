"""Scoring a text with one adaptation setting, and tuning the settings on validation text.

The grids are the published ones, cut to at most 10 points: dynamic evaluation tunes the learning rate first (the
setting that matters most, Krause et al.) at the default decay, then the decay at the best rate, both scaled by
segment/5 as Krause's search scales them; the cache tunes theta and lam at the default window, then tries a longer
window. A cache point needs no pass of the model (rnnlm.adapt.cache), so with adapt=both the cache is tuned on the
states of the best dynamic pass.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rnnlm.adapt.cache import mixed_nll
from rnnlm.adapt.dynamic import DynamicEvaluation, adaptable
from rnnlm.adapt.reading import Pass, Reading, read
from rnnlm.adapt.settings import AdaptSettings

LRS = (1e-5, 2e-5, 3e-5, 5e-5, 7e-5, 1e-4)  # at segment 5: Krause's PTB grid (3e-5 to 1e-4) and below it
DECAYS = (0.0005, 0.002, 0.005, 0.02)  # at segment 5, the default 0.002 among them
SGD_LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
THETAS_LAMS = [(theta, lam) for theta in (0.25, 0.5, 1.0) for lam in (0.05, 0.1, 0.2)]  # around AWD-LSTM's 1, 0.1
WINDOWS = (2000,)  # besides the default 500 (Grave et al.: longer windows help on longer documents)


def perplexity(nll: np.ndarray) -> float:
    """inf where the reading diverged (a rate too high for the model)."""
    mean = float(nll.mean())
    return math.exp(mean) if math.isfinite(mean) and mean < 700 else math.inf


@dataclass
class Scored:
    settings: AdaptSettings | None  # None: static evaluation
    nll: np.ndarray  # each target's NLL under the adapted model (and cache)
    model_nll: np.ndarray  # the same without the cache
    keys: torch.Tensor | None
    seconds: float

    @property
    def ppl(self) -> float:
        return perplexity(self.nll)

    @property
    def model_ppl(self) -> float:
        """Without the cache: dynamic evaluation's alone."""
        return perplexity(self.model_nll)

    @property
    def tokens_per_sec(self) -> float:
        return len(self.nll) / max(self.seconds, 1e-9)


def score_text(net: nn.Module, text: Reading, settings: AdaptSettings, ms: list[torch.Tensor] | None) -> Scored:
    """`text` read once with `settings`, from the trained weights (a fresh copy: `net` is never changed)."""
    copy = adaptable(net)
    update = DynamicEvaluation(copy, settings, ms) if settings.dynamic else None
    done: Pass = read(copy, text, settings.segment, update, settings.key if settings.cache else None)
    return _with_cache(Scored(settings, done.nll, done.nll, done.keys, done.seconds), text)


def static(net: nn.Module, text: Reading, segment: int, key: str | None = None) -> Scored:
    """The trained weights alone, in the same layout (batch size 1, the same segments): what a gain is against.
    key: keep the states too (the cache alone over them: `cache_alone`)."""
    done = read(adaptable(net), text, segment, key=key)
    return Scored(None, done.nll, done.nll, done.keys, done.seconds)


def adapted_and_static(net: nn.Module, text: Reading, settings: AdaptSettings,
                       ms: list[torch.Tensor] | None) -> tuple[Scored, Scored]:  # fmt: skip
    """`text` read adapting, and read static. The cache alone leaves the model as it is, so its reading's model
    scores are the static ones (no second pass); with dynamic evaluation the static reading keeps its states when
    the cache is on, so each method alone can come from these two readings (`cache_alone`)."""
    adapted = score_text(net, text, settings.fitted(len(text)), ms)
    if not settings.dynamic:
        return adapted, Scored(None, adapted.model_nll, adapted.model_nll, None, adapted.seconds)
    return adapted, static(net, text, settings.segment, settings.key if settings.cache else None)


def cache_alone(base: Scored, text: Reading, settings: AdaptSettings) -> Scored:
    """The cache of `settings` over a static reading that kept its states: no second pass of the model."""
    return _with_cache(Scored(settings.but(methods=["cache"]), base.nll, base.model_nll, base.keys, base.seconds), text)


def _with_cache(scored: Scored, text: Reading) -> Scored:
    """The mixture's scores; its time counts in the reading's (the tokens/s are the whole method's)."""
    s = scored.settings
    if s is not None and s.cache:
        began = time.perf_counter()
        scored.nll = mixed_nll(scored.model_nll, scored.keys, text.targets, s.window, s.theta, s.lam)
        scored.seconds += time.perf_counter() - began
    return scored


def search(net: nn.Module, text: Reading, settings: AdaptSettings, ms: list[torch.Tensor] | None,
           say: Callable[[Scored], None]) -> tuple[AdaptSettings, list[Scored]]:  # fmt: skip
    """The best settings on `text` and every point tried (each told to `say` as it is scored)."""
    tried: list[Scored] = []

    def best_of(points: list[AdaptSettings], rescore: Callable[[AdaptSettings], Scored]) -> Scored:
        for point in points:
            if all(point != t.settings for t in tried):
                tried.append(rescore(point))
                say(tried[-1])
        return min((t for t in tried if t.settings in points), key=lambda t: t.ppl)

    best = settings
    if settings.dynamic:
        scale = settings.segment / 5
        lrs = SGD_LRS if settings.rule == "sgd" else LRS
        first = best_of([best.but(lr=lr * scale, decay=0.002 * scale) for lr in lrs],
                        lambda p: score_text(net, text, p, ms))  # fmt: skip
        best = best_of([first.settings.but(decay=d * scale) for d in DECAYS],
                       lambda p: score_text(net, text, p, ms)).settings  # fmt: skip
    if settings.cache:
        base = next((t for t in tried if t.settings == best), None) or score_text(net, text, best, ms)

        def cached(point: AdaptSettings) -> Scored:  # the same pass, another mixture
            return _with_cache(Scored(point, base.nll, base.model_nll, base.keys, base.seconds), text)

        first = best_of([best.but(theta=t, lam=lam) for t, lam in THETAS_LAMS], cached)
        # Windows longer than the text hold all of it: only the first of them is tried.
        windows = list({min(w, len(text)): w for w in reversed((first.settings.window, *WINDOWS))}.values())[::-1]
        best = best_of([first.settings.but(window=w) for w in windows], cached).settings
    return best, tried

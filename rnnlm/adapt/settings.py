"""The settings of adapting at evaluation time (`adapt=dynamic`, `adapt=cache`, `adapt=both`: conf/adapt/), checked
before any data is read or anything scored.

Dynamic evaluation (Krause et al. 2018) and the continuous cache (Grave et al. 2017) share the reading: the split
at batch size 1, in segments of `segment` tokens, each scored before anything learns from it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from rnnlm import checks
from rnnlm.errors import UserError

METHODS = ("dynamic", "cache")
RULES = ("rms", "sgd")
KEYS = ("rnn", "head")
log = logging.getLogger("rnnlm")


@dataclass
class AdaptSettings:
    methods: list[str] = field(default_factory=lambda: ["dynamic"])
    segment: int = 5  # tokens scored before each update (Krause's n); the cache reads in the same segments
    # dynamic evaluation
    rule: str = "rms"  # rms: the published rule, steps scaled by training-gradient RMS statistics; sgd: plain steps
    lr: float = 5e-5  # eta
    decay: float = 0.002  # lambda, the pull back to the trained weights per update
    eps: float = 2e-5  # epsilon of the rms rule
    stats_tokens: int = 100_000  # training tokens the rms statistics read (about; whole batches)
    stats_batch_size: int = 100  # columns of the statistics pass (its gradients' scale is the rule's)
    # the continuous cache
    window: int = 500  # hidden states remembered
    theta: float = 1.0  # how sharply the cache prefers states like the current one
    lam: float = 0.1  # the cache's share of the mixture
    key: str = "rnn"  # rnn: the last recurrent layer's output; head: what the output layer reads (after the MLP head)
    # tuning
    search: bool = True  # tune on the first val_tokens of val (at most 10 points), then score test with the best
    val_tokens: int | None = 20_000  # tokens of val that tuning reads (None: all)

    @property
    def dynamic(self) -> bool:
        return "dynamic" in self.methods

    @property
    def cache(self) -> bool:
        return "cache" in self.methods

    def but(self, **changes: Any) -> AdaptSettings:
        return dataclasses.replace(self, **changes)

    def tuned(self) -> dict[str, Any]:
        """The settings the search tunes and the scores depend on, as results.json records them."""
        keys = ["segment"]
        if self.dynamic:
            keys += ["rule", "lr", "decay"] + (["eps"] if self.rule == "rms" else [])
        if self.cache:
            keys += ["window", "theta", "lam", "key"]
        return {k: getattr(self, k) for k in keys}

    def fitted(self, tokens: int) -> AdaptSettings:
        """These settings for a text of `tokens` tokens, unchanged: a cache window longer than the text holds all of
        it (the same as a window of its length), which is said once."""
        if self.cache and self.window > tokens:
            log.info("adapt.window=%d is more than the %d tokens read: the cache holds them all (window %d)",
                     self.window, tokens, tokens)  # fmt: skip
        return self

    def check(self) -> None:
        methods = list(self.methods)
        if not methods or any(m not in METHODS for m in methods) or len(set(methods)) < len(methods):
            raise UserError(f"adapt.methods={methods} must name dynamic and/or cache, e.g. adapt=dynamic.")
        checks.integer("adapt.segment", self.segment)
        if self.rule not in RULES:
            raise UserError(f"adapt.rule={self.rule!r} is not known: use rms (the published rule) or sgd.")
        checks.number("adapt.lr", self.lr, 0.0, None)
        checks.number("adapt.decay", self.decay, 0.0, 1.0, high_open=False)
        checks.number("adapt.eps", self.eps, 0.0, None, low_open=True)
        checks.integer("adapt.stats_tokens", self.stats_tokens)
        checks.integer("adapt.stats_batch_size", self.stats_batch_size)
        checks.integer("adapt.window", self.window, 0)
        checks.number("adapt.theta", self.theta, 0.0, None)
        checks.number("adapt.lam", self.lam, 0.0, 1.0, high_open=False)
        if self.key not in KEYS:
            raise UserError(
                f"adapt.key={self.key!r} is not known: use rnn (the last recurrent layer's output) or head (what "
                "the output layer reads)."
            )
        checks.boolean("adapt.search", self.search)
        checks.integer("adapt.val_tokens", self.val_tokens, optional=True)


def adapt_settings(node: Any) -> AdaptSettings | None:
    """`adapt` of a config (a dict or DictConfig; None: no adaptation) as checked settings."""
    if node is None:
        return None
    values = dict(node)
    accepted = [f.name for f in dataclasses.fields(AdaptSettings)]
    for key in values:
        if key not in accepted:
            raise UserError(f"adapt.{key} is not a setting of adapt: remove it or use one of {', '.join(accepted)}.")
    for key in ("lr", "decay", "eps", "theta", "lam"):  # users write 0 or 1 for 0.0 or 1.0
        if isinstance(values.get(key), int) and not isinstance(values.get(key), bool):
            values[key] = float(values[key])
    settings = AdaptSettings(**values)
    settings.methods = list(settings.methods) if not isinstance(settings.methods, str) else [settings.methods]
    settings.check()
    return settings

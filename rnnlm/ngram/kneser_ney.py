"""Interpolated modified Kneser-Ney (Chen & Goodman 1998), estimated as SRILM's `ngram-count -kndiscount
-interpolate -unk` does, with its count cutoffs (`-gtNmin`), in numpy over every n-gram of an order at once.

For an n-gram h w of order k, with c its count (raw at the highest order and for n-grams that begin with <s>,
which nothing can precede; below that the continuation count, the number of distinct words seen before h w):

    p_k(w | h) = (c - D_k(c)) / T(h)  +  gamma(h) * p_{k-1}(w | h'),     h' = h without its first word
    gamma(h)   = (D_k1 N1(h) + D_k2 N2(h) + D_k3+ N3+(h)) / T(h)

T(h) sums the counts after h, N_r(h) counts the words seen r times after h (3 or more for N3+), and D_k1, D_k2,
D_k3+ come from order k's counts of counts: Y = n1 / (n1 + 2 n2), D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2,
D3+ = 3 - 4Y n4/n3. Order 0 is uniform over the words a model predicts (every token but <pad> and <s>).

A cutoff (`cutoffs[k-1]`, SRILM's gtkmin) removes the n-grams of order k seen fewer times: they still count in T,
N_r and the discounts, and the mass their discounted counts held goes to the backoff weight of their context,
shared in proportion to the lower order. Without a cutoff that weight is gamma(h) exactly; a context whose every
n-gram was cut backs off with weight 1. A model is then, per order, the probability of every n-gram (`prob`:
its own where kept, else backed off) and the backoff weight of every context (`bow`), as an ARPA file holds it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from rnnlm.errors import UserError
from rnnlm.ngram.grams import Order, Text, count, look_up

log = logging.getLogger("rnnlm")
ORDINAL = {1: "unigram", 2: "bigram", 3: "trigram"}


def gram(k: int) -> str:
    return ORDINAL.get(k, f"{k}-gram")


@dataclass(frozen=True)
class Level:
    """One order's estimate: p(last word | context) for each n-gram and the backoff weight of each context."""

    prob: np.ndarray  # per n-gram of the order (order 1: per vocabulary id)
    bow: np.ndarray  # per (k-1)-gram (order 1: one, the empty context); 1 where it is never a context
    seen: int  # distinct n-grams the training split has
    kept: int  # of those, the ones with a probability of their own (the rest are cut)
    discounts: tuple[float, float, float]


class KneserNey:
    def __init__(self, order: int, vocab_size: int, sos: int, never: list[int], cutoffs: list[int],
                 fallback: list[float] | None = None) -> None:  # fmt: skip
        """`never`: the ids never predicted (<pad>, <s>); `cutoffs`: the least count kept, per order; `fallback`:
        the discounts D1, D2, D3+ of an order whose counts of counts give none (KenLM's --discount_fallback)."""
        self.order, self.vocab_size, self.sos = order, vocab_size, sos
        self.cutoffs, self.fallback = list(cutoffs), fallback
        self.predicted = np.ones(vocab_size, dtype=bool)
        self.predicted[never] = False
        self.orders: list[Order] = []
        self.levels: list[Level] = []

    def fit(self, text: Text) -> KneserNey:
        self.orders, unigrams = count(text, self.order, self.vocab_size)
        raws = [unigrams, *(o.counts for o in self.orders)]
        adjusted = [self._adjusted(k, raws) for k in range(1, self.order + 1)]
        for k, (c, least) in enumerate(zip(adjusted, self.cutoffs), start=1):
            if (most := c.max(initial=0)) < least:
                raise UserError(f"cutoffs keep the {gram(k)}s counted {least} times or more, and the most frequent "
                                f"{gram(k)} counts {most}: lower the cutoff of order {k}.")  # fmt: skip
        uniform = np.where(self.predicted, 1.0 / self.predicted.sum(), 0.0)
        self.levels = []
        for k, c in enumerate(adjusted, start=1):
            self.levels.append(self._estimate(k, c, uniform if k == 1 else self.levels[-1].prob))
        return self

    def _adjusted(self, k: int, raws: list[np.ndarray]) -> np.ndarray:
        """Order k's counts as Kneser-Ney reads them: raw at the top and where an n-gram begins with <s>, else
        the number of distinct (k+1)-grams it ends."""
        if k == self.order:
            return raws[k - 1]
        continued = np.bincount(self.orders[k - 1].suffix, minlength=len(raws[k - 1]))
        after_start = np.arange(self.vocab_size) == self.sos if k == 1 else self.orders[k - 2].after_start
        return np.where(after_start, raws[k - 1], continued)

    def _estimate(self, k: int, c: np.ndarray, below: np.ndarray) -> Level:
        if k == 1:
            contexts, context, lower = 1, np.zeros(len(c), dtype=np.int64), below
        else:
            grams = self.orders[k - 2]
            contexts = len(self.levels[-1].prob)
            context, lower = grams.context(self.vocab_size), below[grams.suffix]
        d1, d2, d3 = discounts = self._discounts(k, c)
        seen = c > 0
        discount = np.select([c == 1, c == 2, c >= 3], [d1, d2, d3], 0.0)
        total = np.bincount(context, weights=c, minlength=contexts)
        spared = np.bincount(context, weights=discount, minlength=contexts)  # D1 N1 + D2 N2 + D3+ N3+
        known = total > 0
        share = np.zeros(contexts)
        share[known] = 1.0 / total[known]
        gamma = spared * share
        own = (c - discount) * share[context]
        kept = seen & (c >= self.cutoffs[k - 1])
        cut_mass = np.bincount(context, weights=np.where(seen & ~kept, own, 0.0), minlength=contexts)
        kept_lower = np.bincount(context, weights=np.where(kept, lower, 0.0), minlength=contexts)
        bow = np.ones(contexts)
        bow[known] = gamma[known] + cut_mass[known] / np.maximum(1.0 - kept_lower[known], 1e-300)
        prob = np.where(kept, own + gamma[context] * lower, bow[context] * lower)
        return Level(prob, bow, int(seen.sum()), int(kept.sum()), discounts)

    def _discounts(self, k: int, c: np.ndarray) -> tuple[float, float, float]:
        n1, n2, n3, n4 = (int(np.count_nonzero(c == r)) for r in (1, 2, 3, 4))
        if n1 and n2 and n3 and n4:
            y = n1 / (n1 + 2 * n2)
            found = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
            if min(found) > 0:
                return found
            why = f"its counts of counts give a discount below zero ({', '.join(f'{d:.3f}' for d in found)})"
        else:
            r = 1 + [n1, n2, n3, n4].index(0)
            why = f"none is seen {r} time{'s' * (r > 1)} (counting as Kneser-Ney does)"
        if self.fallback is not None:
            log.warning("%ss: %s, so they take fallback_discounts=%s", gram(k), why, list(self.fallback))
            return tuple(self.fallback)
        lower = f", order={k - 1}" if k > 1 else ""
        raise UserError(f"the training split's {gram(k)}s give no modified Kneser-Ney discounts: {why}; use more "
                        f"text{lower} or fallback_discounts=[0.5,1.0,1.5].")  # fmt: skip

    # -- reading text -------------------------------------------------------------------------------------
    def log_probs(self, text: Text) -> np.ndarray:
        """The natural log-probability of each predicted token of `text` (its words and </s>), in order."""
        found = look_up(text, self.orders, self.vocab_size)
        longest = np.zeros(len(text.tokens), dtype=np.int64)
        for k in range(1, self.order + 1):
            longest[found[k - 1] >= 0] = k
        logp = np.zeros(len(text.tokens))
        for k, level in enumerate(self.levels, start=1):
            here = (longest == k) & text.predicted
            logp[here] += np.log(level.prob[found[k - 1][here]])
            if k > 1:  # a longer context the training text had, but not followed by this word: its backoff weight
                context = np.full(len(text.tokens), -1, dtype=np.int64)
                context[1:] = found[k - 2][:-1]
                backs = (longest < k) & (context >= 0) & (text.place >= k - 1)
                logp[backs] += np.log(level.bow[context[backs]])
        return logp[text.predicted]

    def distribution(self, history: list[int]) -> np.ndarray:
        """p(w | <s> history) for every vocabulary id w (0 for the ids never predicted)."""
        width = len(history) + 2
        tokens = np.tile(np.array([self.sos, *history, 0], dtype=np.int64), self.vocab_size)
        tokens[width - 1 :: width] = np.arange(self.vocab_size)
        place = np.tile(np.arange(width, dtype=np.int64), self.vocab_size)
        with np.errstate(divide="ignore"):  # the ids never predicted: log 0
            logp = self.log_probs(Text(tokens, place))
        probs = np.exp(logp.reshape(self.vocab_size, width - 1)[:, -1])
        return np.where(self.predicted, probs, 0.0)

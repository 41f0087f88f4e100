"""The n-grams of a set of sentences, every order at once, numbered without a per-n-gram Python loop.

Each sentence is read as `<s> w1 ... wn </s>` (one `<s>`, never padded, as SRILM counts it). A k-gram is numbered
by the pair (the number of its first k - 1 words as a (k-1)-gram, its last word), packed into one int64:
np.unique over those packed keys numbers the distinct k-grams, and np.searchsorted finds a new text's k-grams
among them. So every order is one sort of at most one key per token, whatever the vocabulary.

Positions: `ids[k][i]` is the number of the k-gram that ends at token i (-1 where none does: fewer than k tokens
since `<s>`, or, for a text looked up against a model, a k-gram the training text never had).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rnnlm.data.corpus import EncodedSplit


@dataclass(frozen=True)
class Text:
    """Sentences laid end to end as `<s> w1 ... wn </s>`: the token ids and each token's place in its sentence."""

    tokens: np.ndarray  # int64
    place: np.ndarray  # int64: 0 for <s>, 1 for w1, ...

    @classmethod
    def of(cls, split: EncodedSplit, sos: int, eos: int) -> Text:
        lengths = split.lengths + 2
        starts = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=starts[1:])
        total = int(lengths.sum())
        place = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
        tokens = np.full(total, eos, dtype=np.int64)
        tokens[starts] = sos
        words = np.ones(total, dtype=bool)
        words[starts] = False
        words[starts + lengths - 1] = False
        tokens[words] = split.tokens
        return cls(tokens, place)

    @property
    def predicted(self) -> np.ndarray:
        """Where a token is predicted: every word and </s>, never <s>."""
        return self.place > 0


@dataclass(frozen=True)
class Order:
    """The distinct k-grams of one order k >= 2 of a training text, numbered 0.. in the order of `keys`."""

    keys: np.ndarray  # sorted: number of the prefix (k-1)-gram * vocabulary size + last word
    counts: np.ndarray  # how often each occurs
    suffix: np.ndarray  # the number of the (k-1)-gram each ends with (its last k - 1 words)
    after_start: np.ndarray  # bool: begins with <s> (no word can precede it)

    def context(self, vocab_size: int) -> np.ndarray:
        """The number of each k-gram's first k - 1 words, as a (k-1)-gram."""
        return self.keys // vocab_size


def count(text: Text, order: int, vocab_size: int) -> tuple[list[Order], np.ndarray]:
    """Orders 2..`order` of `text` (index k - 2 holds order k) and the unigram counts (vocabulary-sized: order 1
    is numbered by the word id itself). Only predicted tokens count: <s> is context, never an event."""
    unigrams = np.bincount(text.tokens[text.predicted], minlength=vocab_size).astype(np.int64)
    orders, previous = [], text.tokens
    for k in range(2, order + 1):
        at = np.flatnonzero(text.place >= k - 1)  # k-grams end here: k - 1 tokens at least since <s>
        keys = previous[at - 1] * vocab_size + text.tokens[at]
        distinct, number = np.unique(keys, return_inverse=True)
        suffix = np.empty(len(distinct), dtype=np.int64)
        suffix[number] = previous[at]
        after_start = np.zeros(len(distinct), dtype=bool)
        after_start[number[text.place[at] == k - 1]] = True
        orders.append(Order(distinct, np.bincount(number, minlength=len(distinct)), suffix, after_start))
        previous = np.full(len(text.tokens), -1, dtype=np.int64)
        previous[at] = number
    return orders, unigrams


def look_up(text: Text, orders: list[Order], vocab_size: int) -> list[np.ndarray]:
    """For each order k = 1.. the number of the training k-gram ending at each token of `text`, -1 where the
    training text never had it (index k - 1 holds order k; order 1 is the token id itself)."""
    found, previous = [text.tokens], text.tokens
    for k, grams in enumerate(orders, start=2):
        current = np.full(len(text.tokens), -1, dtype=np.int64)
        at = np.flatnonzero(text.place >= k - 1)
        at = at[previous[at - 1] >= 0]
        keys = previous[at - 1] * vocab_size + text.tokens[at]
        where = np.searchsorted(grams.keys, keys).clip(max=max(len(grams.keys) - 1, 0))
        hit = grams.keys[where] == keys if len(grams.keys) else np.zeros(len(at), dtype=bool)
        current[at[hit]] = where[hit]
        found.append(current)
        previous = current
    return found

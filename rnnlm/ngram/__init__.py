"""The n-gram baseline: interpolated modified Kneser-Ney, scored with rnnlm's corpus perplexity
(`python -m rnnlm.ngram`; docs/BASELINES.md)."""

from rnnlm.ngram.grams import Text
from rnnlm.ngram.kneser_ney import KneserNey

__all__ = ["KneserNey", "Text"]

"""Training callbacks: what a run reports (the model summary, throughput, samples, the per-epoch summary)
and what an exact resume needs (the sampler's position, the random states)."""

from rnnlm.training.callbacks.epoch_summary import EpochSummary
from rnnlm.training.callbacks.resume import RandomState, SamplerPosition
from rnnlm.training.callbacks.samples import SampleText
from rnnlm.training.callbacks.summary import ParameterSummary
from rnnlm.training.callbacks.throughput import TokenThroughput

__all__ = ["EpochSummary", "ParameterSummary", "RandomState", "SampleText", "SamplerPosition", "TokenThroughput"]

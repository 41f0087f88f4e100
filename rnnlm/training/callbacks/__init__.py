"""Training callbacks: what a run reports (the model summary, throughput, samples, the per-epoch summary),
what an exact resume needs (the sampler's position, the random states), what the process needs of a
run (a stop on a signal, logging in ddp_spawn ranks, the wandb run's id), and weight averaging's hooks
(averaging.WeightAveraging, which the LightningModule adds itself and is not exported here)."""

from rnnlm.training.callbacks.epoch_summary import EpochSummary
from rnnlm.training.callbacks.interrupt import GracefulInterrupt
from rnnlm.training.callbacks.resume import RandomState, SamplerPosition
from rnnlm.training.callbacks.samples import SampleText
from rnnlm.training.callbacks.spawned_logging import SpawnedLogging
from rnnlm.training.callbacks.summary import ParameterSummary
from rnnlm.training.callbacks.throughput import TokenThroughput
from rnnlm.training.callbacks.wandb_run_id import WandbRunId

__all__ = [
    "EpochSummary",
    "GracefulInterrupt",
    "ParameterSummary",
    "RandomState",
    "SampleText",
    "SamplerPosition",
    "SpawnedLogging",
    "TokenThroughput",
    "WandbRunId",
]

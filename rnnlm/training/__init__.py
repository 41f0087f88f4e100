"""The Lightning pieces: the LightningModule (lightning_module: steps, corpus perplexity, optimizers), the loss
(objective), the corpus sums (metrics), the carried stream state (stream_state), weight averaging (averaging),
gradient clipping and the non-finite check (gradients), torch.compile (compiled), what a checkpoint keeps
beside the weights (checkpoint_state), when per-step values are logged (step_logging), random states (rng),
schedulers, and callbacks/. Lightning's private API is used only through rnnlm/lightning_api.py, outside this
package. Assembling and running a job is rnnlm.run's; the process around it (signals, DDP, loggers,
checkpoint files) is rnnlm.lifecycle's."""

from rnnlm.moved import install

install()  # the modules that left this package keep their old import paths, with a warning

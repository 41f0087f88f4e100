"""The Lightning pieces: the LightningModule (lightning_module: steps, loss, optimizers), the corpus sums
(metrics), the carried stream state (stream_state), weight averaging (averaging), gradient clipping and the
non-finite check (gradients), torch.compile (compiled), random states (rng), schedulers, the one adapter to
Lightning's private API (lightning_api), and callbacks/. Assembling and running a job is rnnlm.run's; the
process around it (signals, DDP, loggers, checkpoint files) is rnnlm.lifecycle's."""

from rnnlm.moved import install

install()  # the modules that left this package keep their old import paths, with a warning

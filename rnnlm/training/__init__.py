"""Training: the LightningModule (lightning_module, metrics), building a run from its config (build,
config_checks), running it (run: train(); evaluate: evaluate()), what it leaves (results, checkpoint_io),
callbacks, loggers, DDP (distributed), interrupts and random states (interrupt, rng)."""

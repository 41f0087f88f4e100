"""The process around a run: Ctrl-C, SIGTERM and stuck runs (stop_guard, interrupt), failed DDP ranks
(rank_failures), the DDP strategy (ddp), loggers that survive resumes (loggers), atomic checkpoint files and
what is kept on disk (checkpoint_io), library noise filtered (quiet). Knows nothing of the model or the data."""

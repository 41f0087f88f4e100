"""Samples of text during training: a few fixed prompts continued after every validation."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

from rnnlm.files import atomic_open
from rnnlm.generation.search import GenerationConfig, Generator


class SampleText(L.Callback):
    """Generate from a few fixed prompts after every validation epoch and log the text.

    TensorBoard gets it as text, wandb as a table, and every run appends it to `samples.txt` in the run
    folder (so CSV-only runs keep it too). Sampling draws from its own seeded generator, so it does not
    change the training run's random stream.
    """

    def __init__(
        self,
        prompts: list[str] = ("the", "the company said"),
        max_len: int = 20,
        strategy: str = "sample",
        temperature: float = 0.8,
        seed: int = 0,
    ) -> None:
        self.prompts = list(prompts)
        self.max_len, self.strategy, self.temperature, self.seed = max_len, strategy, temperature, seed

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not self.prompts:
            return
        cfg = GenerationConfig(self.strategy, self.max_len, self.temperature, seed=self.seed)
        generator = Generator(pl_module.net, pl_module.tokenizer, pl_module.hparams.get("data_mode", "sentences"))
        results = generator.generate(self.prompts, 1, cfg)
        epoch, step = trainer.current_epoch, trainer.global_step
        lines = [f"{r.prompt} \u00bb {r.text}" for r in results]
        path = Path(trainer.default_root_dir) / "samples.txt"
        earlier = path.read_text(encoding="utf-8") if path.is_file() else ""
        with atomic_open(path) as f:  # the whole file again: a kill mid-write never leaves half a line
            f.write(earlier + "".join(f"epoch {epoch} step {step} | {line}\n" for line in lines))
        for lg in trainer.loggers:
            if isinstance(lg, TensorBoardLogger):
                lg.experiment.add_text("samples", "  \n".join(lines), step)
            elif isinstance(lg, WandbLogger):
                lg.log_text("samples", columns=["epoch", "prompt", "text"],
                            data=[[epoch, r.prompt, r.text] for r in results])  # fmt: skip

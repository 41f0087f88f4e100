"""The SampleText callback writes generated text after every validation epoch."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from rnnlm.data import SentenceDataModule
from rnnlm.training.callbacks import SampleText
from rnnlm.training.lightning_module import LanguageModel


def test_samples_go_to_file_tensorboard_and_wandb(tiny_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    dm = SentenceDataModule(source="text", batch_size=16, **{f"{s}_path": str(p) for s, p in tiny_corpus.items()})
    dm.prepare()
    module = LanguageModel(dm.tokenizer_json, dict(cell="lstm", embed_size=8, hidden_size=8, num_layers=1))
    wandb = WandbLogger(save_dir=str(tmp_path), offline=True, project="rnnlm-test")
    loggers = [CSVLogger(tmp_path, name="csv"), TensorBoardLogger(tmp_path, name="tb"), wandb]
    trainer = L.Trainer(
        max_epochs=2, callbacks=[SampleText(prompts=["the", ""], max_len=5)], logger=loggers,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    wandb.experiment.finish()
    lines = (tmp_path / "samples.txt").read_text().splitlines()
    assert len(lines) == 4  # two prompts x two epochs; the sanity check writes nothing
    assert lines[0].startswith("epoch 0 step ") and "| the \u00bb" in lines[0]
    assert list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert list((tmp_path / "wandb").rglob("*.wandb"))

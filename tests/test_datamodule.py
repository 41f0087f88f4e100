import lightning as L
import pytest

from rnnlm.data import SentenceDataModule
from rnnlm.errors import UserError
from rnnlm.training.callbacks import SamplerPosition
from rnnlm.training.lightning_module import LanguageModel


def datamodule(corpus, **kw) -> SentenceDataModule:
    paths = {f"{s}_path": str(p) for s, p in corpus.items()}
    return SentenceDataModule(source="text", batch_size=16, **paths, **kw)


def test_splits_vocabulary_and_batches(tiny_corpus):
    dm = datamodule(tiny_corpus)
    dm.setup("fit")
    assert {len(dm.splits[s]) for s in ("train", "val", "test")} == {240, 40}
    assert dm.vocab_size == 4 + 16
    batches = list(dm.train_dataloader())
    assert sum(b.inputs.shape[0] for b in batches) == 240
    assert all((b.targets != 0).all() for b in batches)  # bucket_width=1: no padding anywhere


def test_length_filters(tiny_corpus):
    dm = datamodule(tiny_corpus, min_len=4, max_len=6)
    dm.prepare()
    lengths = dm.splits["train"].lengths
    assert lengths.min() >= 4 and lengths.max() <= 6
    st = dm.meta["filters"]["train"]
    assert st["kept"] + st["too_short"] + st["too_long"] == 240 and st["too_short"] > 0 and st["too_long"] > 0


def test_unknown_source_is_refused():
    with pytest.raises(UserError, match="data.source=wiki is not known"):
        SentenceDataModule(source="wiki")


class FirstBatches(L.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.seen.append(batch.inputs.tolist())


def test_batches_are_reshuffled_every_epoch_in_a_real_fit(tiny_corpus, tmp_path):
    dm = datamodule(tiny_corpus)
    dm.prepare()
    module = LanguageModel(dm.tokenizer_json, dict(cell="gru", embed_size=8, hidden_size=8, num_layers=1))
    rec = FirstBatches()
    trainer = L.Trainer(
        max_epochs=3, callbacks=[rec], logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=False, default_root_dir=tmp_path, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    assert len(rec.seen) == 3
    assert rec.seen[0] != rec.seen[1] and rec.seen[1] != rec.seen[2]


def test_worker_processes_serve_the_same_batches(tiny_corpus):
    inline, workers = datamodule(tiny_corpus), datamodule(tiny_corpus, num_workers=1)
    a = [b.inputs.tolist() for b in inline.train_dataloader()]
    b = [b.inputs.tolist() for b in workers.train_dataloader()]
    assert a == b


class AllBatches(L.Callback):
    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append((trainer.current_epoch, batch_idx, batch.inputs.tolist()))


def fit(dm, tmp_path, ckpt_path=None, **trainer_kw):
    dm.prepare()
    module = LanguageModel(dm.tokenizer_json, dict(cell="gru", embed_size=8, hidden_size=8, num_layers=1))
    rec = AllBatches()
    trainer = L.Trainer(
        callbacks=[rec, SamplerPosition(), *trainer_kw.pop("callbacks", [])], logger=False, enable_progress_bar=False,
        enable_model_summary=False, use_distributed_sampler=False, default_root_dir=tmp_path, limit_val_batches=0,
        **trainer_kw,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return rec.seen


def test_a_run_resumed_mid_epoch_trains_on_the_batches_it_had_not_seen(tiny_corpus, tmp_path):
    whole = fit(datamodule(tiny_corpus), tmp_path / "a", max_epochs=2, enable_checkpointing=False)
    assert len(whole) == 2 * 19 and whole[0][2] != whole[19][2]
    every6 = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=6, save_top_k=-1)
    interrupted = fit(datamodule(tiny_corpus), tmp_path / "b", max_steps=8, callbacks=[every6])
    step6 = next((tmp_path / "ck").glob("*step=6*.ckpt"))
    resumed = fit(datamodule(tiny_corpus), tmp_path / "c", ckpt_path=str(step6), max_epochs=2)
    assert interrupted[:6] + resumed == whole

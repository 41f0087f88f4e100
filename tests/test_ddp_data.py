"""The bucket sampler in a real 2-process DDP run (gloo on CPU): every rank the same number of batches,
every training sentence exactly once per epoch across the ranks."""

import json
from collections import Counter

import lightning as L

from rnnlm.data import SentenceDataModule
from rnnlm.training.lightning_module import LanguageModel
from tests.conftest import make_sentences


class Record(L.Callback):
    def __init__(self, out_dir):
        self.out_dir, self.rows, self.batches = str(out_dir), [], 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.rows += [r[1:] for r in batch.inputs.tolist()]  # drop <sos>; no padding at bucket_width=1
        self.batches += 1

    def on_train_epoch_end(self, trainer, pl_module):
        with open(f"{self.out_dir}/rank{trainer.global_rank}.json", "w") as f:
            json.dump({"rows": self.rows, "batches": self.batches}, f)


def test_ranks_share_an_epoch_exactly(tmp_path):
    for split, n in (("train", 301), ("val", 41), ("test", 40)):
        (tmp_path / f"{split}.txt").write_text("\n".join(make_sentences(n, 0)))
    paths = {f"{s}_path": str(tmp_path / f"{s}.txt") for s in ("train", "val", "test")}
    dm = SentenceDataModule(source="text", batch_size=16, **paths)
    dm.prepare()
    module = LanguageModel(dm.tokenizer_json, dict(cell="gru", embed_size=8, hidden_size=8, num_layers=1))
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp_spawn", max_epochs=1, callbacks=[Record(tmp_path)],
        logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False, limit_val_batches=0, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(module, datamodule=dm)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    split = dm.splits["train"]
    expected = Counter(tuple(split.sentence(i).tolist()) for i in range(len(split)))
    assert Counter(tuple(r) for rank in ranks for r in rank["rows"]) == expected
    assert ranks[0]["batches"] == ranks[1]["batches"] > 0

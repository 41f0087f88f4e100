"""LanguageModel: the LightningModule that trains a network (rnnlm.models) with teacher forcing.

Read top to bottom: the steps (each batch's summed NLL, added to its split's corpus sums), the corpus perplexity
logged per split (exp of the summed NLL over the summed tokens, never a mean of batch perplexities), the
optimizer. Beside it in rnnlm.training: the loss (objective), stream mode's carried state (stream_state),
clipping and the nan/inf check (gradients), weight averaging (averaging, run by callbacks.WeightAveraging),
what a checkpoint keeps beside the weights and the migration of older ones (checkpoint_state).

Every hyperparameter it keeps is a plain type (the tokenizer as its JSON string, configs as dicts), so a
checkpoint alone rebuilds the model: LanguageModel.load_from_checkpoint(path).
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate

from rnnlm import checks
from rnnlm.data.batch import Batch
from rnnlm.data.sources import SPLITS
from rnnlm.data.tokenizer import kind_of, special_ids, tokenizer_from_json
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.training.averaging import WeightAverage
from rnnlm.training.callbacks.averaging import WeightAveraging
from rnnlm.training.checkpoint_state import load_extras, save_extras
from rnnlm.training.compiled import maybe_compile
from rnnlm.training.gradients import clip_and_check
from rnnlm.training.metrics import CorpusNLL
from rnnlm.training.objective import check_loss_average, check_penalties, score_window, training_loss
from rnnlm.training.schedulers import run_steps, scaled_learning_rate
from rnnlm.training.step_logging import log_this_step
from rnnlm.training.stream_state import StreamState


class LanguageModel(L.LightningModule):
    def __init__(
        self,
        tokenizer_json: str,
        model: dict[str, Any],
        optim: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        tokenizer_cfg: dict[str, Any] | None = None,  # the settings that built it, to check a resume against
        skip_nonfinite: bool = False,  # skip steps whose gradient norm is nan/inf instead of stopping the run
        loss_average: str = "tokens",  # what the optimised loss divides the summed NLL by (objective.py)
        data_mode: str = "sentences",  # the data module's mode (set by build(), kept so a resume can check it)
        ar: float = 0.0,  # AWD-LSTM's activation regularisation: ar * mean(last layer's dropped output^2)
        tar: float = 0.0,  # temporal AR: tar * mean((its undropped output_t - output_{t-1})^2)
        averaging: dict[str, Any] | None = None,  # weight averaging (rnnlm.training.averaging)
        compile: bool = False,  # torch.compile the window's forward and loss (rnnlm.training.compiled)
    ) -> None:
        super().__init__()
        check_loss_average(loss_average)
        check_penalties(ar, tar)
        checks.boolean("module.compile", compile)
        # The tokenizer JSON is large: keep it in the checkpoint, out of the logger's hparams table.
        self.save_hyperparameters(logger=False)
        self.tokenizer = tokenizer_from_json(tokenizer_json)
        self.ids = special_ids(self.tokenizer)
        self.pad = self.ids["pad"]
        # Characters are also measured in bits per character, as the character-level literature reports them.
        self.per_character = kind_of(self.tokenizer) == "char"
        self.net = RNNLanguageModel(vocab_size=self.tokenizer.get_vocab_size(), **model)
        for split in SPLITS:  # train_nll, val_nll, test_nll
            setattr(self, f"{split}_nll", CorpusNLL())
        self.train_nll.persistent(True)  # kept in mid-epoch checkpoints: a resumed epoch's train/ppl is exact
        self.skip_nonfinite, self.skipped_steps = skip_nonfinite, 0
        self.loss_average, self.ar, self.tar = loss_average, ar, tar
        self.stream = StreamState()
        self.averaging = WeightAverage(**(averaging or {}))
        self._score = score_window  # compiled in setup(), once the device is known
        self._batch_idx, self._lr_scale = 0, 1.0

    def forward(self, inputs: torch.Tensor, hidden=None):
        return self.net(inputs, hidden)

    def setup(self, stage: str) -> None:
        if self._score is score_window:  # once per module: fit then test reuse the compiled function
            device = self.trainer.strategy.root_device.type
            self._score = maybe_compile(score_window, self.hparams.get("compile", False), device)

    def _step(self, batch: Batch, split: str, batch_idx: int = 0):
        """The batch's summed NLL, added to the split's corpus sums (and the activations AR/TAR read)."""
        hidden = self.stream.take(split, batch, batch_idx, self.global_rank, self.device)
        nll, hidden, raw, dropped = self._score(self.net, batch.inputs, hidden, batch.targets, self.pad)
        self.stream.keep(split, batch, hidden)
        # A nan/inf batch (stopped or skipped at the gradient check) must not poison the epoch's sums;
        # torch.where keeps this free of a device sync.
        finite = torch.isfinite(nll)
        getattr(self, f"{split}_nll").update(torch.where(finite, nll, 0.0), finite.long() * batch.num_tokens)
        return nll, raw, dropped

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Before optimizer_step, which runs training_step inside its closure.
        self._batch_idx, self._lr_scale = batch_idx, batch.lr_scale

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        nll, raw, dropped = self._step(batch, "train", batch_idx)
        if log_this_step(self.trainer, batch_idx):  # per token whatever is optimised, to compare with val/loss
            loss = nll / batch.num_tokens
            self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch.num_tokens)
        return training_loss(nll, raw, dropped, batch, self.pad, self.loss_average, self.ar, self.tar)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val", batch_idx)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test", batch_idx)

    def _log_corpus(self, split: str) -> None:
        metric = getattr(self, f"{split}_nll")
        nll = metric.compute()  # syncs the sums across DDP ranks
        metric.reset()
        logged = {f"{split}/loss": nll.float(), f"{split}/ppl": nll.exp().float()}
        if self.per_character:
            logged[f"{split}/bpc"] = (nll / math.log(2)).float()
        self.log_dict(logged, prog_bar=split != "train")

    def on_train_start(self) -> None:
        # total_steps null: the run's length, known once its data is set up (asking earlier sets the data up
        # before a resumed run has put its sampler back).
        for config in self.trainer.lr_scheduler_configs:
            if getattr(config.scheduler, "total_steps", 0) is None:
                config.scheduler.run_length(run_steps(self.trainer.estimated_stepping_batches))

    def on_train_epoch_end(self) -> None:
        self._log_corpus("train")

    def on_validation_epoch_end(self) -> None:
        self._log_corpus("val")

    def on_test_epoch_end(self) -> None:
        self._log_corpus("test")

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        with scaled_learning_rate(optimizer, self._lr_scale):  # variable windows (AWD-LSTM): length / bptt
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        self.averaging.update(self.net)  # here, before any callback may save this step's checkpoint

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        if gradient_clip_algorithm not in (None, "norm"):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        clip_and_check(self, gradient_clip_val, self._batch_idx)

    def configure_optimizers(self):
        optimizer = instantiate(dict(self.hparams.optim or {"_target_": "torch.optim.Adam", "lr": 1e-3}),
                                params=self.parameters())  # fmt: skip
        if not self.hparams.scheduler:
            return optimizer
        sched_cfg = dict(self.hparams.scheduler)
        monitor = sched_cfg.pop("monitor", "val/ppl")
        interval = sched_cfg.pop("interval", "epoch")  # step: a per-step schedule (warm-up)
        scheduler = instantiate(sched_cfg, optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": monitor, "interval": interval}}  # fmt: skip

    def configure_callbacks(self) -> list[L.Callback]:
        return [WeightAveraging()] if self.averaging.kind != "none" else []

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_extras(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        load_extras(self, checkpoint)

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

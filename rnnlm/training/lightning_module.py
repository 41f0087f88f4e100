"""LanguageModel: the LightningModule that trains an RNNLanguageModel with teacher forcing.

It does the training and nothing else: the forward and the loss for the data mode (sentences: state reset
per batch; stream: the hidden state carried from window to window and detached), the corpus perplexity of each split,
gradient clipping (and what to do with a nan/inf gradient), the optimizer and scheduler. What a run
reports and what a resume needs live in callbacks (rnnlm.training.callbacks).

Every hyperparameter it keeps is a plain type (the tokenizer as its JSON string, configs as dicts), so a
checkpoint alone rebuilds the model: LanguageModel.load_from_checkpoint(path).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate

from rnnlm import checks
from rnnlm.data.batch import Batch
from rnnlm.data.tokenizer import special_ids, tokenizer_from_json
from rnnlm.errors import UserError
from rnnlm.lifecycle.checkpoint_io import what_is_kept
from rnnlm.models.regularisers import activation_penalty
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.training.averaging import WeightAverage
from rnnlm.training.compiled import maybe_compile
from rnnlm.training.metrics import CorpusNLL
from rnnlm.training.step_logging import log_this_step

SPLITS = ("train", "val", "test")
LOSS_AVERAGES = ("tokens", "sequences")
log = logging.getLogger("rnnlm")


class LanguageModel(L.LightningModule):
    def __init__(
        self,
        tokenizer_json: str,
        model: dict[str, Any],
        optim: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        tokenizer_cfg: dict[str, Any] | None = None,  # the settings that built it, to check a resume against
        skip_nonfinite: bool = False,  # skip steps whose gradient norm is nan/inf instead of stopping the run
        loss_average: str = "tokens",  # what the optimised loss divides the summed NLL by: see check_loss_average
        data_mode: str = "sentences",  # the data module's mode (set by build(), kept so a resume can check it)
        ar: float = 0.0,  # AWD-LSTM's activation regularisation: ar * mean(last layer's dropped output^2)
        tar: float = 0.0,  # temporal AR: tar * mean((its undropped output_t - output_{t-1})^2)
        averaging: dict[str, Any] | None = None,  # weight averaging (rnnlm.training.averaging)
        compile: bool = False,  # torch.compile the window's forward and loss (rnnlm.training.compiled)
    ) -> None:
        super().__init__()
        check_loss_average(loss_average)
        check_penalties(ar, tar)
        # The tokenizer JSON is large: keep it in the checkpoint, out of the logger's hparams table.
        self.save_hyperparameters(logger=False)
        self.tokenizer = tokenizer_from_json(tokenizer_json)
        self.ids = special_ids(self.tokenizer)
        self.net = RNNLanguageModel(vocab_size=self.tokenizer.get_vocab_size(), **model)
        # One corpus-NLL accumulator per split (train_nll, val_nll, test_nll).
        for split in SPLITS:
            setattr(self, f"{split}_nll", CorpusNLL())
        # The training sums survive a mid-epoch checkpoint, so a resumed epoch's train/ppl is exact too.
        self.train_nll.persistent(True)
        self.skip_nonfinite = skip_nonfinite
        self.skipped_steps = 0
        self._batch_idx = 0
        self.loss_average, self.stream = loss_average, data_mode == "stream"
        # Stream mode: each split's carried state; a resumed run's, until its first batch.
        self._hidden: dict[str, Any] = dict.fromkeys(SPLITS)
        self._restored_hidden = None
        self._lr_scale = 1.0
        self.ar, self.tar = ar, tar
        self.averaging = WeightAverage(**(averaging or {}))
        checks.boolean("module.compile", compile)
        self._score = score_window  # compiled in setup(), once the device is known

    def forward(self, inputs: torch.Tensor, hidden=None):
        return self.net(inputs, hidden)

    def summed_nll(self, batch: Batch, split: str = "train") -> torch.Tensor:
        """Teacher-forced NLL summed over every non-pad target of the batch, in one fused RNN call."""
        return self._encode_and_score(batch, split)[0]

    def _encode_and_score(self, batch: Batch, split: str):
        """(summed NLL, the last RNN layer's output, the same after its dropout). In stream mode the batch
        continues the split's previous window: its state goes in, the new one is kept, detached (truncated
        BPTT; detaching needs no device sync)."""
        hidden = self._hidden[split] if self.stream else None
        nll, hidden, raw, dropped = self._score(self.net, batch.inputs, hidden, batch.targets, self.ids["pad"])
        if self.stream:
            self._hidden[split] = detach(hidden)
        return nll, raw, dropped

    def setup(self, stage: str) -> None:
        if self._score is score_window:  # once per module: fit then test reuse the compiled function
            device = self.trainer.strategy.root_device.type
            self._score = maybe_compile(score_window, self.hparams.get("compile", False), device)

    def _step(self, batch: Batch, split: str):
        """The batch's summed NLL, added to the split's corpus sums (and the activations AR/TAR read)."""
        nll, raw, dropped = self._encode_and_score(batch, split)
        # A nan/inf batch (stopped or skipped at the gradient check) must not poison the epoch's sums;
        # torch.where keeps this free of a device sync.
        finite = torch.isfinite(nll)
        getattr(self, f"{split}_nll").update(torch.where(finite, nll, 0.0), finite.long() * batch.num_tokens)
        return nll, raw, dropped

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        # The optimised loss: the mean per target token, or (loss_average=sequences) the sum over each
        # sequence's steps averaged over the batch rows.
        nll, raw, dropped = self._step(batch, "train")
        per_token = nll / batch.num_tokens  # logged per token whatever is optimised, to compare with val/loss
        if log_this_step(self.trainer, batch_idx):
            self.log("train/loss", per_token, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch.num_tokens)
        loss = per_token if self.loss_average == "tokens" else nll / batch.inputs.shape[0]
        if self.ar or self.tar:
            # Weighted against the per-token loss, as AWD-LSTM's; scaled alike when the loss sums over steps.
            penalty = activation_penalty(raw, dropped, (batch.targets != self.ids["pad"]).float(), self.ar, self.tar)
            loss = loss + penalty * (1.0 if self.loss_average == "tokens" else batch.num_tokens / batch.inputs.shape[0])
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def _log_corpus(self, split: str) -> torch.Tensor:
        metric = getattr(self, f"{split}_nll")
        nll = metric.compute()  # syncs the sums across DDP ranks
        metric.reset()
        self.log_dict({f"{split}/loss": nll.float(), f"{split}/ppl": nll.exp().float()}, prog_bar=split != "train")
        return nll

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        self._batch_idx = batch_idx  # for the divergence message
        self._lr_scale = batch.lr_scale
        if self._restored_hidden is not None:
            # A run resumed mid-epoch goes on from the saved state; one saved at an epoch's end starts afresh.
            mine = [t[self.global_rank].to(self.device) for t in self._restored_hidden]
            self._hidden["train"] = (mine[0] if len(mine) == 1 else tuple(mine)) if batch_idx > 0 else None
            self._restored_hidden = None

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """Variable-length windows (AWD-LSTM) scale this step's learning rate by length / bptt."""
        if self._lr_scale == 1.0:
            super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        else:
            lrs = [group["lr"] for group in optimizer.param_groups]
            for group in optimizer.param_groups:
                group["lr"] *= self._lr_scale
            try:
                super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
            finally:
                for group, lr in zip(optimizer.param_groups, lrs):
                    group["lr"] = lr
        self.averaging.update(self.net)

    def on_train_epoch_start(self) -> None:
        self._hidden["train"] = None
        self.averaging.on_epoch_start(self.net, self.current_epoch)

    def on_validation_epoch_start(self) -> None:
        self._hidden["val"] = None
        self.averaging.swap_in(self.net)

    def on_test_epoch_start(self) -> None:
        self._hidden["test"] = None
        self.averaging.swap_in(self.net)

    def on_train_epoch_end(self) -> None:
        self._log_corpus("train")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rnnlm_skipped_steps"] = self.skipped_steps
        if self.averaging.kind != "none":
            self.averaging.save(checkpoint, self.net)
        hidden = self._hidden["train"]
        if self.stream and hidden is not None:
            # Every rank saves here (only rank 0 writes the file): each rank's own state, gathered.
            parts = (hidden,) if isinstance(hidden, torch.Tensor) else hidden
            gathered = [self.all_gather(t) if self.trainer.world_size > 1 else t[None] for t in parts]
            checkpoint["rnnlm_stream_hidden"] = [t.cpu() for t in gathered]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.skipped_steps = int(checkpoint.get("rnnlm_skipped_steps", 0))
        self._restored_hidden = checkpoint.get("rnnlm_stream_hidden")
        trainer = self._trainer
        self.averaging.load(checkpoint, self.net, resuming=trainer is not None and trainer.state.fn == "fit")
        state = checkpoint.get("state_dict", {})
        for key, value in self.train_nll.state_dict().items():  # checkpoints from before these sums were kept
            state.setdefault(f"train_nll.{key}", value)

    def on_validation_epoch_end(self) -> None:
        val_loss = self._log_corpus("val")
        self.averaging.swap_out(self.net)
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return
        event = self.averaging.after_validation(self.net, self.current_epoch, float(val_loss))
        if event == "started":
            log.info(
                "validation loss is worse than the best before the last %d epochs: averaging the weights from epoch "
                "%d on (NT-ASGD); validation, checkpoints and test use the average",
                self.averaging.nonmono, self.current_epoch + 1,
            )  # fmt: skip
        elif event == "stop":  # every rank saw the same synced loss, so all stop together
            log.info("validation loss is worse than the best before the last %d epochs: stopping (module."
                     "averaging.stop)", self.averaging.nonmono)  # fmt: skip
            self.trainer.should_stop = True

    def on_test_epoch_end(self) -> None:
        self._log_corpus("test")
        self.averaging.swap_out(self.net)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Clip by global norm and log the pre-clip norm, which clipping computes anyway."""
        if gradient_clip_algorithm not in (None, "norm"):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        params = [p for p in self.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if log_this_step(self.trainer, self._batch_idx):
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)
        # fp16's loss scaler expects inf gradients now and then and skips those steps itself.
        scaled = getattr(self.trainer.precision_plugin, "scaler", None) is not None
        if not scaled and not torch.isfinite(norm):  # after DDP's all-reduce: every rank decides alike
            self._nonfinite(params, float(norm))
            return
        if gradient_clip_val:
            torch.nn.utils.clip_grads_with_norm_(params, gradient_clip_val, norm)

    def _nonfinite(self, params: list[torch.nn.Parameter], norm: float) -> None:
        where = f"step {self.trainer.global_step} (epoch {self.current_epoch}, batch {self._batch_idx})"
        if self.skip_nonfinite:
            for p in params:
                p.grad = None  # the optimizer leaves parameters without a gradient untouched, moments included
            self.skipped_steps += 1
            log.warning("gradient norm %s at %s: step skipped (%d so far)", norm, where, self.skipped_steps)
            self.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
            return
        raise UserError(
            f"training diverged: the gradient norm is {norm} at {where}: lower optim.lr or trainer.gradient_clip_val, "
            f"or set module.skip_nonfinite=true to skip such steps; {what_is_kept(self.trainer)}."
        )

    def configure_optimizers(self):
        cfg = dict(self.hparams.optim or {"_target_": "torch.optim.Adam", "lr": 1e-3})
        optimizer = instantiate(cfg, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        sched_cfg = dict(self.hparams.scheduler)
        monitor = sched_cfg.pop("monitor", "val/ppl")
        scheduler = instantiate(sched_cfg, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": monitor}}

    @property
    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def score_window(net: RNNLanguageModel, inputs: torch.Tensor, hidden: Any, targets: torch.Tensor, pad: int):
    """The summed NLL of one batch (or window) and what the step needs besides: the final state and the last
    layer's output before and after its dropout (AR/TAR). One function, so module.compile compiles it whole."""
    features, hidden, raw, dropped = net.encode(inputs, hidden)
    return net.nll(features.flatten(0, 1), targets.flatten(), pad), hidden, raw, dropped


def detach(hidden: Any) -> Any:
    return tuple(h.detach() for h in hidden) if isinstance(hidden, tuple) else hidden.detach()


def check_penalties(ar: float, tar: float) -> None:
    checks.number("module.ar", ar, 0.0, None)
    checks.number("module.tar", tar, 0.0, None)


def check_loss_average(loss_average: str) -> None:
    """tokens: the NLL averaged over every target token (pytorch/examples, lr 20); sequences: summed over
    each sequence's steps and averaged over the batch rows (Zaremba et al. 2014, whose lr 1 is per
    sequence: the same gradient direction, bptt times larger)."""
    if loss_average not in LOSS_AVERAGES:
        raise UserError(f"module.loss_average={loss_average!r} is not known: use tokens or sequences.")

"""A trained network from its checkpoint alone: the file read with one clear sentence when it is not what
the user thinks, the network rebuilt from the settings it carries, and the tokenizer it travels with.

Generation and scoring take a TrainedModel (a plain network and its tokenizer), never the LightningModule
that trained it, so that nothing here depends on Lightning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from rnnlm.data.tokenizer import special_ids, tokenizer_from_json
from rnnlm.errors import UserError
from rnnlm.models.rnn_lm import RNNLanguageModel


def check_local(key: str, path: str | Path) -> None:
    """rnnlm reads and writes checkpoints on local disks; a URL must not silently become a folder `s3:`."""
    if "://" in str(path):
        raise UserError(
            f"{key}={path} is a URL, and rnnlm reads and writes checkpoints on local (or mounted) disks only: "
            "copy it to a local path, or mount the bucket and give the mounted path."
        )


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    check_local(key, path)
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{key}={path} is not a file: give the path of a .ckpt written by rnnlm.")
    try:
        # mmap: only the hyperparameters are needed here; tensors stay on disk until touched.
        ckpt = torch.load(p, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:
        raise UserError(
            f"{key}={path} could not be read as a checkpoint ({type(err).__name__}): "
            "is the file complete and written by rnnlm?"
        ) from err
    if "tokenizer_json" not in ckpt.get("hyper_parameters", {}):
        raise UserError(f"{key}={path} was not written by rnnlm (it carries no tokenizer): use an rnnlm .ckpt.")
    return ckpt


@dataclass
class TrainedModel:
    net: RNNLanguageModel
    tokenizer: Tokenizer
    hparams: dict[str, Any]  # what the checkpoint was trained with (model, optim, tokenizer settings, ...)

    @property
    def ids(self) -> dict[str, int]:
        return special_ids(self.tokenizer)

    @property
    def data_mode(self) -> str:
        """sentences or stream: how it was trained (checkpoints from before stream mode: sentences)."""
        return self.hparams.get("data_mode", "sentences")

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device


def load_model(ckpt_path: str | Path, device: str = "auto") -> TrainedModel:
    """The network of a checkpoint, in eval mode on `device` ("auto": the GPU when there is one)."""
    ckpt = read_checkpoint(ckpt_path)
    hparams = ckpt["hyper_parameters"]
    tokenizer = tokenizer_from_json(hparams["tokenizer_json"])
    net = RNNLanguageModel(vocab_size=tokenizer.get_vocab_size(), **hparams["model"])
    net.load_state_dict({k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return TrainedModel(net.to(device).eval(), tokenizer, dict(hparams))

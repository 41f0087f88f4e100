"""Evaluate a checkpoint on any data: `python eval.py ckpt_path=... [data=text data.test_path=...]`."""

import hydra
from omegaconf import DictConfig

from rnnlm.cli import run_or_exit
from rnnlm.run.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    run_or_exit(evaluate, cfg)


if __name__ == "__main__":
    main()

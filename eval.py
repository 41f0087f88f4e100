"""Evaluate a checkpoint on any data: `python eval.py ckpt_path=... [data=text data.test_path=...]`."""

import hydra
from omegaconf import DictConfig

import rnnlm.sweeps.resolvers  # noqa: F401  (resolvers the configs use, registered before Hydra reads them)
from rnnlm.cli import run_or_exit
from rnnlm.run.evaluate import evaluate
from rnnlm.run.train import objective


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float | None:
    return objective(run_or_exit(evaluate, cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

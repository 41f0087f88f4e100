"""Train an RNN, GRU or LSTM language model: `python train.py model=gru` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

import rnnlm.sweeps.resolvers  # noqa: F401  (resolvers the configs use, registered before Hydra reads them)
from rnnlm.cli import run_or_exit
from rnnlm.run.train import objective, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    metrics = run_or_exit(train, cfg)
    return objective(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

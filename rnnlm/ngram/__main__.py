"""`python -m rnnlm.ngram [data=...] [tokenizer=...] order=5 [cutoffs=[1,1,1,1,2]]`: the Kneser-Ney baseline."""

import hydra
from omegaconf import DictConfig

import rnnlm.sweeps.resolvers  # noqa: F401  (resolvers the configs use, registered before Hydra reads them)
from rnnlm.cli import run_or_exit
from rnnlm.ngram.run import run
from rnnlm.run.train import objective


@hydra.main(version_base="1.3", config_path="../../conf", config_name="ngram")
def main(cfg: DictConfig) -> float | None:
    return objective(run_or_exit(run, cfg), cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

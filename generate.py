"""Write or score text with a trained checkpoint: `python generate.py ckpt_path=... prompt="the cast"`.

See conf/generate.yaml for every setting.
"""

import hydra
from omegaconf import DictConfig

from rnnlm.cli import run_or_exit
from rnnlm.generation.run import run


@hydra.main(version_base="1.3", config_path="conf", config_name="generate")
def main(cfg: DictConfig) -> None:
    run_or_exit(run, cfg)


if __name__ == "__main__":
    main()

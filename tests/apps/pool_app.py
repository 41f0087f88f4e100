"""A stand-in sweep job for the gpu_pool tests: records the card it was given and when it ran."""

import json
import os
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg: DictConfig) -> float:
    start = time.time()
    time.sleep(cfg.get("sleep", 1.0))
    if cfg.get("fail_on") == cfg.i:
        raise ValueError(f"job {cfg.i} failed on purpose")
    record = {"i": cfg.i, "device": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}
    Path(cfg.out, f"{cfg.i}.json").write_text(json.dumps(record))
    return float(cfg.i)


if __name__ == "__main__":
    main()

"""Writing and scoring text with a trained network and its tokenizer: greedy, sampled and beam search
(search, sampling, beam), per-sentence and corpus scores (scoring), and what generate.py runs (run)."""

from rnnlm.generation.scoring import Scores, score
from rnnlm.generation.search import Generated, GenerationConfig, Generator
from rnnlm.models.trained import TrainedModel, load_model

__all__ = ["GenerationConfig", "Generated", "Generator", "Scores", "TrainedModel", "load_model", "score"]

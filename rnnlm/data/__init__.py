from rnnlm.data.corpus import EncodedSplit, encode_splits
from rnnlm.data.datamodule import SentenceDataModule
from rnnlm.data.sampler import BucketBatchSampler
from rnnlm.data.tokenizer import SPECIALS, build_tokenizer, tokenizer_from_json

__all__ = [
    "SPECIALS",
    "BucketBatchSampler",
    "EncodedSplit",
    "SentenceDataModule",
    "build_tokenizer",
    "encode_splits",
    "tokenizer_from_json",
]

"""The data pipeline, from files to batches.

Sources (each `read()`s train/val/test sentences, with a cheap `fingerprint()`): reading.py (what file-reading
sources share), sources.py (base classes, `ptb`, `text`), tables.py (`csv`), imdb.py, hf.py (`hf`: the `datasets`
library), wikitext.py (`wikitext*`); catalog.py names them.
Preparation: tokenizer.py (learned from train), encoding.py (bulk encoding), corpus.py (EncodedSplit,
encode_splits, the length filters), cache.py (the encoded corpus on disk), summary.py (the data summary), and
prepare.py (PreparedCorpus: source -> tokenizer, given or learned -> encoded splits, cached).
Serving: sampler.py (ResumableOrder, BucketBatchSampler), batch.py (teacher-forcing batches), stream.py (stream
mode's columns), windows.py (its bptt windows), loaders.py (the DataLoaders, ResumableLoader), and
datamodule.py (LanguageDataModule, alias SentenceDataModule: loaders in either mode).
"""

from rnnlm.data.corpus import EncodedSplit, encode_splits
from rnnlm.data.datamodule import LanguageDataModule, SentenceDataModule
from rnnlm.data.prepare import PreparedCorpus
from rnnlm.data.sampler import BucketBatchSampler
from rnnlm.data.tokenizer import SPECIALS, build_tokenizer, tokenizer_from_json

__all__ = [
    "SPECIALS",
    "BucketBatchSampler",
    "EncodedSplit",
    "LanguageDataModule",
    "PreparedCorpus",
    "SentenceDataModule",
    "build_tokenizer",
    "encode_splits",
    "tokenizer_from_json",
]

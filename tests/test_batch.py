import numpy as np
import torch

from rnnlm.data.batch import SentenceDataset
from rnnlm.data.corpus import EncodedSplit

PAD, SOS, EOS = 0, 2, 3


def dataset():
    split = EncodedSplit.from_ids([[10, 11, 12], [20, 21], [30, 31, 32]])
    return SentenceDataset(split, PAD, SOS, EOS)


def test_teacher_forcing_shift_without_padding():
    b = dataset().__getitems__([0, 2])
    assert b.inputs.tolist() == [[SOS, 10, 11, 12], [SOS, 30, 31, 32]]
    assert b.targets.tolist() == [[10, 11, 12, EOS], [30, 31, 32, EOS]]
    assert b.num_tokens == 8 and b.inputs.dtype == torch.int64


def test_padding_only_where_lengths_differ():
    b = dataset().__getitems__([1, 0])
    assert b.inputs.tolist() == [[SOS, 20, 21, PAD], [SOS, 10, 11, 12]]
    assert b.targets.tolist() == [[20, 21, EOS, PAD], [10, 11, 12, EOS]]
    assert b.num_tokens == int((b.targets != PAD).sum()) == 7


def test_offsets_and_lengths():
    split = dataset().split
    assert split.lengths.tolist() == [3, 2, 3]
    assert split.sentence(1).tolist() == [20, 21]
    assert split.tokens.dtype == np.int32

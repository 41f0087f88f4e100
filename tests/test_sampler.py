import numpy as np
import pytest

from rnnlm.data.sampler import BucketBatchSampler


@pytest.fixture
def lengths():
    return np.random.default_rng(0).integers(1, 40, size=1000)


@pytest.mark.parametrize("width", [1, 2, 5])
def test_every_sentence_once_per_epoch(lengths, width):
    s = BucketBatchSampler(lengths, batch_size=16, bucket_width=width, seed=3)
    for epoch in range(3):
        s.set_epoch(epoch)
        batches = list(s)
        assert len(batches) == len(s)
        ids = np.concatenate(batches)
        assert len(ids) == len(lengths) and sorted(ids) == list(range(len(lengths)))
        assert all(1 <= len(b) <= 16 for b in batches)


def test_equal_lengths_in_a_batch_when_width_is_one(lengths):
    for batch in BucketBatchSampler(lengths, batch_size=16, bucket_width=1):
        assert len(set(lengths[batch])) == 1


def test_width_bounds_the_spread(lengths):
    for batch in BucketBatchSampler(lengths, batch_size=16, bucket_width=4):
        keys = (lengths[batch] - 1) // 4
        assert len(set(keys)) == 1


def test_shuffle_depends_on_seed_and_epoch_only(lengths):
    a = BucketBatchSampler(lengths, batch_size=16, seed=1)
    b = BucketBatchSampler(lengths, batch_size=16, seed=1)
    assert [list(x) for x in a.batches(0)] == [list(x) for x in b.batches(0)]
    assert [list(x) for x in a.batches(0)] != [list(x) for x in a.batches(1)]
    c = BucketBatchSampler(lengths, batch_size=16, seed=2)
    assert [list(x) for x in a.batches(0)] != [list(x) for x in c.batches(0)]


def test_eval_order_is_fixed(lengths):
    s = BucketBatchSampler(lengths, batch_size=16, shuffle=False)
    assert [list(x) for x in s.batches(0)] == [list(x) for x in s.batches(5)]

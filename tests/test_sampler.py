import numpy as np
import pytest

from rnnlm.data.sampler import BucketBatchSampler
from rnnlm.errors import UserError


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


def test_token_budget_gives_long_sentences_smaller_batches(lengths):
    s = BucketBatchSampler(lengths, batch_size=None, max_tokens=200, bucket_width=1)
    batches = list(s)
    assert sorted(np.concatenate(batches)) == list(range(len(lengths)))
    for b in batches:
        width = lengths[b].max() + 1  # <sos>/<eos> included
        assert len(b) * width <= 200 or len(b) == 1
    sizes = {int(lengths[b][0]): len(b) for b in batches}
    assert sizes[39] < sizes[5]  # long sentences, fewer of them a batch


@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("max_tokens", [None, 300])
def test_ranks_get_equal_counts_and_each_sentence_once(lengths, replicas, max_tokens):
    ranks = [
        BucketBatchSampler(lengths, batch_size=16, max_tokens=max_tokens, seed=5, num_replicas=replicas, rank=r)
        for r in range(replicas)
    ]
    for epoch in range(2):
        per_rank = []
        for s in ranks:
            s.set_epoch(epoch)
            per_rank.append(list(s))
        assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) == len(ranks[0])
        seen = np.concatenate([np.concatenate(b) for b in per_rank])
        assert len(seen) == len(lengths) and sorted(seen) == list(range(len(lengths)))


def test_too_few_sentences_for_the_ranks_is_refused():
    with pytest.raises(UserError, match="3 sentences cannot be shared by 4 processes"):
        BucketBatchSampler(np.array([3, 4, 5]), batch_size=2, num_replicas=4, rank=0)


def test_state_dict_resumes_mid_epoch_with_the_unseen_batches(lengths):
    s = BucketBatchSampler(lengths, batch_size=16, seed=7)
    s.set_epoch(2)
    full = list(s)
    s.consumed = 10  # the training loop marks what it trained on
    state = s.state_dict()

    fresh = BucketBatchSampler(lengths, batch_size=16, seed=7)
    fresh.load_state_dict(state)
    fresh.set_epoch(2)  # Lightning sets the same epoch again on resume: no reset
    assert list(fresh) == full[10:]
    fresh.set_epoch(3)  # the next epoch is whole again
    assert len(list(fresh)) == len(full)


def test_end_of_epoch_state_resumes_at_the_next_epoch(lengths):
    s = BucketBatchSampler(lengths, batch_size=16, seed=7)
    s.consumed = len(s)
    fresh = BucketBatchSampler(lengths, batch_size=16, seed=7)
    fresh.load_state_dict(s.state_dict())
    assert fresh.epoch == 1 and list(fresh) == [b.tolist() for b in s.batches(epoch=1)]


def test_state_from_another_batch_order_is_refused(lengths):
    state = BucketBatchSampler(lengths, batch_size=16).state_dict()
    with pytest.raises(UserError, match="different batch order"):
        BucketBatchSampler(lengths, batch_size=32).load_state_dict(state)

import math

import torch

from rnnlm.data.batch import SentenceDataset
from rnnlm.data.corpus import EncodedSplit
from rnnlm.data.tokenizer import build_tokenizer
from rnnlm.training.lightning_module import LanguageModel

SENTENCES = ["the cat sat", "a dog ran on the mat", "the dog"]


def setup_module_and_data():
    torch.manual_seed(0)
    tok = build_tokenizer(SENTENCES)
    module = LanguageModel(tok.to_str(), dict(cell="lstm", embed_size=8, hidden_size=8, num_layers=1)).eval()
    ids = [tok.encode(s, add_special_tokens=False).ids for s in SENTENCES]
    data = SentenceDataset(EncodedSplit.from_ids(ids), pad_id=0, sos_id=2, eos_id=3)
    return module, data


def hand_perplexity(module, data):
    """exp(total NLL / total targets), one sentence and one position at a time, <eos> counted, <sos> not."""
    nll, count = 0.0, 0
    with torch.no_grad():
        for i in range(len(data)):
            b = data.__getitems__([i])  # a batch of one: no padding at all
            logp = torch.log_softmax(module.net(b.inputs)[0][0], dim=-1)
            for t, target in enumerate(b.targets[0].tolist()):
                nll -= logp[t, target].item()
                count += 1
    assert count == sum(len(s.split()) + 1 for s in SENTENCES)
    return math.exp(nll / count)


def test_corpus_perplexity_matches_hand_computation_on_a_padded_batch():
    module, data = setup_module_and_data()
    batch = data.__getitems__([0, 1, 2])  # lengths 3, 6, 2: padded
    assert (batch.targets == 0).sum() > 0
    with torch.no_grad():
        module._step(batch, "val")
    ppl = module.val_nll.compute().exp().item()
    assert math.isclose(ppl, hand_perplexity(module, data), rel_tol=1e-6)


def test_split_into_batches_gives_the_same_corpus_perplexity_not_a_mean():
    module, data = setup_module_and_data()
    with torch.no_grad():
        for ids in ([0], [1, 2]):
            module._step(data.__getitems__(ids), "val")
    ppl = module.val_nll.compute().exp().item()
    assert math.isclose(ppl, hand_perplexity(module, data), rel_tol=1e-6)

import numpy as np
import pytest

from rnnlm.data.tokenizer import SPECIALS, build_tokenizer, special_ids, tokenizer_from_json
from rnnlm.errors import UserError
from tests.conftest import make_sentences


def test_specials_come_first_and_text_unk_is_the_special():
    # PTB writes rare words as a literal "<unk>": it must map to the special, not get a second id.
    tok = build_tokenizer(["the cat <unk> sat", "the <unk> dog", "the mat"])
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
    assert sorted(tok.get_vocab().values()) == list(range(tok.get_vocab_size()))
    assert tok.encode("the <unk> zebra", add_special_tokens=False).ids == [4, 1, 1]
    assert special_ids(tok) == {"pad": 0, "unk": 1, "sos": 2, "eos": 3}


def test_vocab_size_keeps_the_most_frequent_words():
    tok = build_tokenizer(["a a a b b c"], vocab_size=6)
    assert tok.get_vocab_size() == 6
    assert tok.token_to_id("a") == 4 and tok.token_to_id("b") == 5 and tok.token_to_id("c") is None


def test_json_round_trip():
    tok = build_tokenizer(["x y z", "y z"])
    again = tokenizer_from_json(tok.to_str())
    assert again.get_vocab() == tok.get_vocab()


def test_vocab_smaller_than_specials_is_refused():
    with pytest.raises(UserError, match="tokenizer.vocab_size=3"):
        build_tokenizer(["a b"], vocab_size=3)


PROSE = [
    "The cast was great, wasn't it?",
    "I loved it!  Really.",
    "a <unk> word and UPPER case",
    "ünïcödé wörds — and dashes",
    "x",
]
SETTINGS = [
    dict(kind="word"),
    dict(kind="word", lowercase=True, split_punct=True),
    dict(kind="char"),
    dict(kind="char", lowercase=True),
    dict(kind="bpe", vocab_size=60),
    dict(kind="bpe", vocab_size=80, lowercase=True),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_every_kind_puts_specials_first_and_round_trips(settings):
    tok = tokenizer_from_json(build_tokenizer(PROSE * 5, **settings).to_str())
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2, 3]
    ids = tok.encode("and UPPER case word", add_special_tokens=False).ids
    assert 1 not in ids  # every piece of a training sentence is known
    text = tok.decode(ids, skip_special_tokens=False)
    expected = "and UPPER case word"
    assert text == (expected.lower() if settings.get("lowercase") else expected)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_chunked_encoding_equals_one_sentence_at_a_time(settings, monkeypatch):
    import rnnlm.data.encoding as encoding

    monkeypatch.setattr(encoding, "CHUNK", 3)  # many chunks, and several blocks of them
    monkeypatch.setattr(encoding, "BLOCK", 7)
    sentences = PROSE * 7 + ["a literal <eos> inside", "   ", "unseen zzz words", "glued<unk>special", "a\x1fb"]
    tok = build_tokenizer(PROSE, **settings)
    # the plain word tokenizer takes the dict path, every other one the tokenizer's
    assert (encoding.plain_word_vocab(tok) is not None) == (settings == dict(kind="word"))
    blocks = list(encoding.encode_blocks(sentences, tok))
    tokens, lengths = (np.concatenate([b[i] for b in blocks]) for i in (0, 1))
    one = [tok.encode(s, add_special_tokens=False).ids for s in sentences]
    assert lengths.tolist() == [len(x) for x in one]
    assert tokens.tolist() == [i for x in one for i in x]


def test_bpe_needs_a_vocab_size():
    with pytest.raises(UserError, match="tokenizer=bpe needs tokenizer.vocab_size"):
        build_tokenizer(PROSE, kind="bpe")


def test_unknown_kind_is_refused():
    with pytest.raises(UserError, match="tokenizer.kind=sentencepiece is not known"):
        build_tokenizer(PROSE, kind="sentencepiece")


@pytest.mark.parametrize("lowercase, min_freq", [(False, 1), (True, 2)])
def test_fast_word_counting_gives_the_trainers_vocabulary(lowercase, min_freq):
    # split_punct=True takes the HF trainer path; on text without punctuation it must agree exactly.
    sents = make_sentences(300, 0) + ["The Cat SAT", "zebra", "Zebra yak", "the <unk> cat"]
    fast = build_tokenizer(sents, lowercase=lowercase, min_freq=min_freq, vocab_size=18)
    trainer = build_tokenizer(sents, lowercase=lowercase, min_freq=min_freq, vocab_size=18, split_punct=True)
    assert fast.get_vocab() == trainer.get_vocab()


@pytest.mark.parametrize(
    "text, needs",
    [("plain words only", False), ("<unk> alone <eos>", False), ("<unk> <unk>", False), ("glued<unk> x", True),
     ("x <eos>glued", True), ("a \x1f b", True), ("<b>html</b>", False)],
)  # fmt: skip
def test_blocks_that_split_would_get_wrong_go_to_the_tokenizer(text, needs):
    from rnnlm.data.encoding import _needs_tokenizer

    assert _needs_tokenizer(text) == needs

import pytest

from rnnlm.data.tokenizer import SPECIALS, build_tokenizer, special_ids, tokenizer_from_json
from rnnlm.errors import UserError


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

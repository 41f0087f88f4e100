"""Tokenizers built with HF `tokenizers`; specials are always the first ids.

The tokenizer is serialised as its JSON string, which travels inside checkpoints so that a checkpoint
alone is enough to generate or score text.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from rnnlm.errors import UserError

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (PAD, UNK, SOS, EOS)


def build_tokenizer(
    sentences: Iterable[str],
    kind: str = "word",
    vocab_size: int | None = None,
    min_freq: int = 1,
    lowercase: bool = False,
) -> Tokenizer:
    """Learn a tokenizer from the training sentences only.

    `vocab_size` counts the specials; None keeps every word seen at least `min_freq` times.
    """
    if kind != "word":
        raise UserError(f"tokenizer.kind={kind} is not known: use tokenizer=word.")
    if vocab_size is not None and vocab_size <= len(SPECIALS):
        raise UserError(
            f"tokenizer.vocab_size={vocab_size} leaves no room for words after the {len(SPECIALS)} specials "
            f"{' '.join(SPECIALS)}: set it above {len(SPECIALS)} or to null."
        )
    norm = normalizers.Lowercase() if lowercase else None
    counter = Tokenizer(models.WordLevel(unk_token=UNK))
    counter.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if norm is not None:
        counter.normalizer = norm
    trainer = trainers.WordLevelTrainer(vocab_size=10**9, min_frequency=min_freq, special_tokens=[])
    counter.train_from_iterator(sentences, trainer)

    # The trainer gives a word that also appears in the text (PTB's literal "<unk>") its frequency rank
    # instead of the special's id, leaving a hole; so rank the words ourselves, specials first.
    words = [w for w, _ in sorted(counter.get_vocab().items(), key=lambda kv: kv[1]) if w not in SPECIALS]
    if vocab_size is not None:
        words = words[: vocab_size - len(SPECIALS)]
    vocab = {tok: i for i, tok in enumerate((*SPECIALS, *words))}

    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if norm is not None:
        tok.normalizer = norm
    tok.add_special_tokens(list(SPECIALS))
    return tok


def tokenizer_from_json(text: str) -> Tokenizer:
    tok = Tokenizer.from_str(text)
    missing = [s for s in SPECIALS if tok.token_to_id(s) is None]
    if missing:
        raise UserError(f"the tokenizer lacks the special tokens {missing}: rebuild it with rnnlm.")
    return tok


def special_ids(tok: Tokenizer) -> dict[str, int]:
    return {name: tok.token_to_id(s) for name, s in zip(("pad", "unk", "sos", "eos"), SPECIALS)}

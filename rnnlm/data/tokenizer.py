"""Tokenizers built with HF `tokenizers`: word, char or BPE, specials always ids 0-3.

The tokenizer is serialised as its JSON string, which travels inside checkpoints (and next to the cached
corpus as tokenizer.json) so that a checkpoint alone is enough to generate or score text.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from itertools import islice

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from rnnlm import checks
from rnnlm.errors import UserError

PAD, UNK, SOS, EOS = "<pad>", "<unk>", "<sos>", "<eos>"
SPECIALS = (PAD, UNK, SOS, EOS)
KINDS = ("word", "char", "bpe")


def _pipeline(tok: Tokenizer, kind: str, lowercase: bool, split_punct: bool) -> Tokenizer:
    """Normaliser, pre-tokenizer and decoder of each kind."""
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    if kind == "word":
        # WhitespaceSplit keeps pre-tokenized text (PTB's "n't", "'s") as it is; Whitespace also cuts
        # punctuation off words ("it!" -> "it", "!"), which raw prose needs.
        tok.pre_tokenizer = pre_tokenizers.Whitespace() if split_punct else pre_tokenizers.WhitespaceSplit()
    elif kind == "char":
        tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), "isolated")  # every character, spaces included
        tok.decoder = decoders.Fuse()
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace()  # spaces become "▁", so decoding restores them
        tok.decoder = decoders.Metaspace()
    return tok


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise UserError(f"tokenizer.kind={kind} is not known: use tokenizer=word, tokenizer=char or tokenizer=bpe.")


def check_tokenizer_settings(
    kind: str = "word", vocab_size: int | None = None, min_freq: int = 1, lowercase: bool = False,
    split_punct: bool = False,
) -> None:  # fmt: skip
    check_kind(kind)
    checks.integer("tokenizer.vocab_size", vocab_size, optional=True)
    if vocab_size is not None and vocab_size <= len(SPECIALS):
        raise UserError(
            f"tokenizer.vocab_size={vocab_size} leaves no room for tokens after the {len(SPECIALS)} specials "
            f"{' '.join(SPECIALS)}: set it above {len(SPECIALS)}" + (" or to null." if kind != "bpe" else ".")
        )
    if kind == "bpe" and vocab_size is None:
        raise UserError("tokenizer=bpe needs tokenizer.vocab_size (e.g. 8000): it sets how many merges to learn.")
    checks.integer("tokenizer.min_freq", min_freq)
    checks.boolean("tokenizer.lowercase", lowercase)
    checks.boolean("tokenizer.split_punct", split_punct)


def build_tokenizer(
    sentences: Iterable[str],
    kind: str = "word",
    vocab_size: int | None = None,
    min_freq: int = 1,
    lowercase: bool = False,
    split_punct: bool = False,
) -> Tokenizer:
    """Learn a tokenizer from the training sentences only.

    `vocab_size` counts the specials; None keeps every word (or character) seen at least `min_freq`
    times. BPE needs a vocab_size: it is the number of merges to learn.
    """
    check_tokenizer_settings(kind, vocab_size, min_freq, lowercase, split_punct)
    progress = sys.stderr.isatty()
    if kind == "bpe":
        tok = _pipeline(Tokenizer(models.BPE(unk_token=UNK)), kind, lowercase, split_punct)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_freq, special_tokens=list(SPECIALS), show_progress=progress
        )
        tok.train_from_iterator(sentences, trainer)  # the trainer gives the specials ids 0-3
        return tok

    # Tokens ranked by count, ties alphabetically (the trainer's own order).
    if kind == "word" and not split_punct:
        counts = _count_words(sentences, lowercase)
        ranked = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    else:
        counter = _pipeline(Tokenizer(models.WordLevel(unk_token=UNK)), kind, lowercase, split_punct)
        trainer = trainers.WordLevelTrainer(
            vocab_size=10**9, min_frequency=min_freq, special_tokens=[], show_progress=progress
        )
        counter.train_from_iterator(sentences, trainer)
        ranked = [w for w, _ in sorted(counter.get_vocab().items(), key=lambda kv: kv[1])]
    # The trainer gives a word that also appears in the text (PTB's literal "<unk>") its frequency rank
    # instead of the special's id, leaving a hole; so the specials are put first here.
    words = [w for w in ranked if w not in SPECIALS]
    if vocab_size is not None:
        words = words[: vocab_size - len(SPECIALS)]
    vocab = {t: i for i, t in enumerate((*SPECIALS, *words))}
    tok = _pipeline(Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK)), kind, lowercase, split_punct)
    tok.add_special_tokens(list(SPECIALS))
    return tok


def _count_words(sentences: Iterable[str], lowercase: bool) -> Counter:
    """Word counts for the plain word tokenizer (whitespace split, as its pre-tokenizer): counting in
    Python over 10k-sentence blocks takes half the HF trainer's time on a 1M-sentence corpus, and the
    counts only rank the words (encoding is always done by the tokenizer itself)."""
    counts: Counter = Counter()
    it = iter(sentences)
    while block := list(islice(it, 10_000)):
        text = " ".join(block)
        counts.update((text.lower() if lowercase else text).split())
    return counts


def tokenizer_from_json(text: str) -> Tokenizer:
    tok = Tokenizer.from_str(text)
    missing = [s for s in SPECIALS if tok.token_to_id(s) is None]
    if missing:
        raise UserError(f"the tokenizer lacks the special tokens {missing}: rebuild it with rnnlm.")
    return tok


def special_ids(tok: Tokenizer) -> dict[str, int]:
    return {name: tok.token_to_id(s) for name, s in zip(("pad", "unk", "sos", "eos"), SPECIALS)}


def kind_of(tok: Tokenizer) -> str:
    """word, char or bpe: what built `tok` (_pipeline), read from its pre-tokenizer."""
    pre = json.loads(tok.to_str()).get("pre_tokenizer") or {}
    if pre.get("type") == "Split" and pre.get("pattern") == {"Regex": "."}:
        return "char"
    return "bpe" if pre.get("type") == "Metaspace" else "word"


def sentence_start(data_mode: str) -> str:
    """The special a sentence is read after: <sos>, or <eos> for a model trained in stream mode (it only ever saw
    a sentence follow an <eos>)."""
    return "eos" if data_mode == "stream" else "sos"

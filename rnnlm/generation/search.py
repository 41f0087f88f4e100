"""Writing text with a trained model: greedy, sampled (temperature, top-k, top-p) and beam search (beam.py).

Every strategy runs all prompts x samples (or prompts x beams) as one batch: each prompt is read once,
its hidden state is repeated, and one RNN step per generated token serves the whole batch.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import torch
from tokenizers import Tokenizer

from rnnlm.data.tokenizer import sentence_start, special_ids
from rnnlm.errors import UserError
from rnnlm.generation.beam import beam_search
from rnnlm.generation.sampling import sample_tokens
from rnnlm.models.rnn_lm import RNNLanguageModel
from rnnlm.precision import bf16_fallback

log = logging.getLogger(__name__)
STRATEGIES = ("greedy", "sample", "beam")
DECODE_ROWS = 128  # rows per block through the output layer and the draw (see Generator._choose)


@dataclass
class GenerationConfig:
    strategy: str = "sample"
    max_len: int = 30  # generated tokens, <eos> included
    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0  # 1.0 = no nucleus filter
    beam_size: int = 5
    length_penalty: float = 1.0  # beams are ranked by log-prob / length ** length_penalty
    seed: int | None = None
    bf16: bool = False  # bf16 autocast: ~2x faster where bf16 is native (AVX-512 BF16/AMX CPUs, Ampere+ GPUs)
    allow_emulated_bf16: bool = False  # bf16 even where the hardware only emulates it (slower than fp32)

    def check(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UserError(f"strategy={self.strategy} is not known: use one of {', '.join(STRATEGIES)}.")
        if self.max_len < 1:
            raise UserError(f"max_len={self.max_len} must be at least 1.")
        if self.strategy == "sample" and self.temperature <= 0:
            raise UserError(f"temperature={self.temperature} must be > 0 with strategy=sample (use strategy=greedy).")
        if not 0 < self.top_p <= 1:
            raise UserError(f"top_p={self.top_p} must be in (0, 1]: 1 keeps every token.")
        if self.top_k < 0:
            raise UserError(f"top_k={self.top_k} must be >= 0 (0 = no top-k filter).")
        if self.beam_size < 1:
            raise UserError(f"beam_size={self.beam_size} must be at least 1.")


@dataclass
class Generated:
    prompt: str
    text: str  # the continuation only
    tokens: list[str]
    logprob: float  # model log-probability of the continuation (<eos> included when generated), nats
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _select(hidden, index: torch.Tensor):
    """Pick batch rows (dim 1) of an RNN state: a tensor, or an LSTM's (h, c)."""
    if isinstance(hidden, tuple):
        return tuple(h.index_select(1, index) for h in hidden)
    return hidden.index_select(1, index)


class Generator:
    """Text from a network and its tokenizer (rnnlm.models.load_model gives both from a checkpoint)."""

    def __init__(self, net: RNNLanguageModel, tokenizer: Tokenizer, data_mode: str = "sentences") -> None:
        """`data_mode` is how the network was trained: a stream-trained one read every sentence after an
        <eos> (never a <sos>), so its prompts start with <eos>."""
        self.net = net.eval()
        self.tok = tokenizer
        self.ids = special_ids(tokenizer)
        self.start = self.ids[sentence_start(data_mode)]
        self.device = next(net.parameters()).device
        self.bf16 = False
        self._never = torch.tensor([self.ids["pad"], self.ids["sos"]], device=self.device)

    # -- prompts ----------------------------------------------------------------------------------------
    def encode_prompt(self, prompt: str) -> list[int]:
        """<sos> (stream-trained: <eos>) + the prompt's ids; words outside the vocabulary become <unk>, with a
        warning."""
        enc = self.tok.encode(prompt, add_special_tokens=False)
        # enc.tokens shows "<unk>" for unknown words: take the user's words from the offsets.
        words = [prompt[a:b] for a, b in enc.offsets]
        unknown = [w for w, i in zip(words, enc.ids) if i == self.ids["unk"] and w != "<unk>"]
        if unknown:
            log.warning("prompt %r: %s not in the vocabulary, read as <unk>", prompt, ", ".join(unknown))
        return [self.start, *enc.ids]

    def _read_prompts(self, prompts: list[str], copies: int):
        """Read every prompt once, prompts of one length in one batch; return the output-layer inputs at
        each prompt's last position and the RNN states, each row repeated `copies` times."""
        encoded = [self.encode_prompt(p) for p in prompts]
        by_length: dict[int, list[int]] = {}
        for i, ids in enumerate(encoded):
            by_length.setdefault(len(ids), []).append(i)
        order, feats, states = [], [], []
        for rows in by_length.values():
            f, hidden = self._features(torch.tensor([encoded[i] for i in rows], device=self.device))
            order += rows
            feats.append(f[:, -1])
            states.append(hidden)
        # Row j of the concatenation holds prompt order[j]; gather rows back into prompt order, repeated.
        where = torch.empty(len(prompts), dtype=torch.long, device=self.device)
        where[torch.tensor(order, device=self.device)] = torch.arange(len(prompts), device=self.device)
        index = where.repeat_interleave(copies)
        if isinstance(states[0], tuple):
            hidden = tuple(torch.cat([s[k] for s in states], dim=1) for k in range(len(states[0])))
        else:
            hidden = torch.cat(states, dim=1)
        return torch.cat(feats).index_select(0, index), _select(hidden, index)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _features(self, tokens: torch.Tensor, hidden=None):
        with self._autocast():
            return self.net.features(tokens, hidden)

    def _step(self, tokens: torch.Tensor, hidden, rows: torch.Tensor | None = None):
        """One RNN step of every row, from the state's `rows` when given (the rows still going, the beams kept)."""
        if rows is not None:
            hidden = _select(hidden, rows)
        feats, hidden = self._features(tokens[:, None], hidden)
        return feats[:, -1], hidden

    def _log_probs(self, feats: torch.Tensor) -> torch.Tensor:
        """Next-token log-probabilities with <pad> and <sos> (never valid next tokens) at -inf."""
        with self._autocast():
            logits = self.net.scores(feats)
        logp = torch.log_softmax(logits.float(), dim=-1)
        return logp.index_fill_(-1, self._never, float("-inf"))

    def _choose(self, feats: torch.Tensor, cfg: GenerationConfig, gen) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token and its model log-probability for every row. The output layer and the draw run on
        blocks of rows: a block's logits stay in cache for the passes over the vocabulary."""
        tokens, logprobs = [], []
        for f in feats.split(DECODE_ROWS):
            with self._autocast():
                logits = self.net.scores(f).float()
            if cfg.strategy == "greedy":
                lse = torch.logsumexp(logits, dim=-1)
                tok = logits.index_fill_(-1, self._never, float("-inf")).argmax(-1)
                logprob = logits.gather(1, tok[:, None]).squeeze(1) - lse
            else:
                tok, logprob = self._sample_block(logits, cfg, gen)
            tokens.append(tok)
            logprobs.append(logprob.double())
        return torch.cat(tokens), torch.cat(logprobs)

    def _sample_block(self, logits: torch.Tensor, cfg: GenerationConfig, gen) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample from softmax(logits / T) without ever normalising it: two in-place passes instead of a
        log-softmax and a softmax (2-3x less time per block). Overwrites `logits`."""
        z = logits.sub_(logits.amax(-1, keepdim=True))  # <= 0: exp cannot overflow
        if cfg.temperature == 1.0:
            weights = z.exp_()
            log_total = weights.sum(-1).log()  # the model's own normaliser, <pad>/<sos> included
        else:
            log_total = torch.logsumexp(z, dim=-1)
            weights = z.div_(cfg.temperature).exp_()
        weights.index_fill_(-1, self._never, 0.0)
        tok = sample_tokens(weights, cfg.top_k, cfg.top_p, gen)
        # weights[tok] = exp(z_tok / T), so z_tok = T * log(weights[tok]); log-prob = z_tok - log_total.
        return tok, weights.gather(1, tok[:, None]).squeeze(1).log() * cfg.temperature - log_total

    def _decode(self, ids: list[int]) -> tuple[str, list[str]]:
        ids = [i for i in ids if i != self.ids["eos"]]
        # The tokenizer's own decoder: words joined by spaces, characters fused, BPE "▁" marks made spaces.
        return self.tok.decode(ids, skip_special_tokens=False), [self.tok.id_to_token(i) for i in ids]

    # -- strategies -------------------------------------------------------------------------------------
    @torch.no_grad()  # the whole search: no step may build an autograd graph
    def generate(self, prompts: list[str], num_samples: int = 1, cfg: GenerationConfig | None = None):
        """num_samples continuations of each prompt (beam: the num_samples best beams), prompt by prompt."""
        cfg = cfg or GenerationConfig()
        cfg.check()
        fallback = bf16_fallback(self.device, "bf16=true", cfg.allow_emulated_bf16) if cfg.bf16 else None
        self.bf16 = cfg.bf16 and fallback is None
        if fallback is not None:
            log.warning(fallback)
        if num_samples < 1:
            raise UserError(f"num_samples={num_samples} must be at least 1.")
        if not prompts:
            raise UserError("there are no prompts: give at least one (an empty string starts from <sos>).")
        if cfg.strategy == "beam":
            if num_samples > cfg.beam_size:
                raise UserError(f"num_samples={num_samples} is more than beam_size={cfg.beam_size}: raise beam_size.")
            rows = beam_search(self, prompts, num_samples, cfg)
        else:
            rows = self._sample(prompts, num_samples, cfg)
        settings = self._settings(cfg)
        return [Generated(prompts[p], *self._decode(ids), logprob, settings) for p, ids, logprob in rows]

    def _settings(self, cfg: GenerationConfig) -> dict:
        keys = {"greedy": ("max_len",), "sample": ("max_len", "temperature", "top_k", "top_p", "seed"),
                "beam": ("max_len", "beam_size", "length_penalty")}[cfg.strategy]  # fmt: skip
        return {"strategy": cfg.strategy, **{k: getattr(cfg, k) for k in keys}, **({"bf16": True} if self.bf16 else {})}

    def _sample(self, prompts: list[str], n: int, cfg: GenerationConfig) -> list[tuple[int, list[int], float]]:
        """Greedy or sampled: n continuations of each prompt, as (prompt index, token ids, log-prob)."""
        gen = None
        if cfg.strategy == "sample" and cfg.seed is not None:
            gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        feats, hidden = self._read_prompts(prompts, n)
        batch = feats.shape[0]
        out = torch.full((batch, cfg.max_len), self.ids["pad"], dtype=torch.long, device=self.device)
        total = torch.zeros(batch, device=self.device, dtype=torch.float64)
        active = torch.arange(batch, device=self.device)  # rows still generating
        for t in range(cfg.max_len):
            nxt, logprob = self._choose(feats, cfg, gen)
            out[active, t] = nxt
            total[active] += logprob
            going = nxt != self.ids["eos"]
            if t == cfg.max_len - 1 or not bool(going.any()):
                break
            # Finished rows leave the batch: later steps only pay for sentences still being written.
            keep = going.nonzero().squeeze(1)
            active = active[keep]
            feats, hidden = self._step(nxt[keep], hidden, rows=keep)
        pad = self.ids["pad"]
        return [(row // n, [i for i in out[row].tolist() if i != pad], float(total[row])) for row in range(batch)]

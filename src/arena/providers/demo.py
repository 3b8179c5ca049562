"""Built-in demo models: tiny random-weight language models that need nothing but NumPy.

They exist so that ``arena serve`` shows a working gateway, arena and leaderboard before any
real model is configured. They are NOT language models in any useful sense: each one is a
bigram softmax over a small built-in English vocabulary whose weights are random numbers
seeded by the model's name. Output is word salad, labelled as such, but it streams like a
real model (at ``tokens_per_s``), honours ``max_tokens``, ``stop``, ``n``, ``temperature``
and ``seed``, reports usage, and sometimes writes Markdown (headings, bullet and numbered
lists, bold) so the UI's rendering and the leaderboard's style features have something to
show. Everything is deterministic given the model name, the prompt and ``seed``.

A chat that asks for a judge's verdict (``[[rating]]``, ``[[A]]``/``[[B]]``, ``[[A>>B]]``)
gets a short judgement ending in a well-formed verdict instead (``demo_judge``), so the
LLM-as-a-judge commands work offline too; one that asks for a pipeline label as JSON gets
random labels of that shape (``demo_labeller``).

Tokens here are "pieces": a word with its leading space, punctuation or a Markdown marker.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from arena.errors import BadRequest, NotSupported
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from arena.providers.base import Delta, EmbeddingResult, Provider, ProviderInfo, TokenUsage
from arena.providers.demo_judge import judgement_pieces, verdict_format
from arena.providers.demo_labeller import label_pieces, labeller_shape
from arena.providers.stop_strings import StopMatcher

_WORDS = """
    the a an this that these some every each many few most other same new old good great
    small large long short early late clear simple quiet bright warm cold green blue red
    river mountain city garden window kitchen library market village forest ocean island
    bridge road station school museum harbor valley meadow tower castle cottage workshop
    teacher student farmer painter sailor doctor baker writer child neighbor traveler friend
    book letter song story picture map lamp clock table chair basket boat bicycle kite
    morning evening winter summer spring autumn day night week year moment season
    walks reads writes builds finds keeps brings carries opens closes paints plants watches
    follows remembers explains answers shares gathers repairs visits crosses counts
    quickly slowly gently carefully quietly often always never sometimes together almost
    and but or because while after before when since although so then also still
    in on under over near beside behind through across around along beyond within
    idea plan question answer reason method problem result example detail pattern choice
    water light stone paper bread salt tea rain wind snow fire sand wood glass
    """
VOCABULARY: tuple[str, ...] = tuple(_WORDS.split())

_STYLES: dict[str, dict[str, float]] = {
    # Probabilities of each answer shape, and of bolding a word inside prose.
    "plain": {"paragraphs": 0.85, "bullets": 0.1, "numbered": 0.05, "heading": 0.0, "bold": 0.0},
    "lists": {"paragraphs": 0.2, "bullets": 0.5, "numbered": 0.3, "heading": 0.3, "bold": 0.05},
    "bold": {"paragraphs": 0.6, "bullets": 0.3, "numbered": 0.1, "heading": 0.1, "bold": 0.12},
    "mixed": {"paragraphs": 0.5, "bullets": 0.3, "numbered": 0.2, "heading": 0.15, "bold": 0.05},
}

LABELS = "labels"  # the _Job.verdict of a labeller prompt
DEMO_NOTICE = "Demo model with random weights: it writes word salad, for trying Arena out."


# Positions each word of an embedded text adds to (feature hashing with a few slots, so that
# short texts still give vectors with more than one or two nonzero values).
_EMBED_SLOTS = 8


def _seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def approx_words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True, slots=True)
class DemoLanguageModel:
    """A seeded random bigram softmax model over ``VOCABULARY``."""

    name: str
    weights: np.ndarray  # (V, V): logits of the next word given the previous one
    start: np.ndarray  # (V,): logits of a sentence's first word

    @classmethod
    def from_name(cls, name: str) -> DemoLanguageModel:
        rng = np.random.default_rng(_seed("weights", name))
        v = len(VOCABULARY)
        return cls(name=name, weights=rng.normal(0.0, 1.6, (v, v)), start=rng.normal(0.0, 1.0, v))

    def prompt_bias(self, prompt: str) -> np.ndarray:
        """Words of the prompt that are in the vocabulary become likelier, so answers echo
        the topic a little and different prompts give different answers."""
        bias = np.zeros(len(VOCABULARY))
        index = {w: i for i, w in enumerate(VOCABULARY)}
        for word in set(re.findall(r"[a-z]{4,}", prompt.lower())):
            i = index.get(word)
            if i is not None:
                bias[i] = 1.5
            else:
                bias[_seed("hash", word) % len(VOCABULARY)] += 0.3
        return bias

    def pieces(self, prompt: str, *, seed: int, temperature: float, style: str) -> Iterator[str]:
        """The answer, piece by piece (an endless supply; the caller stops it)."""
        rng = np.random.default_rng(_seed("sample", self.name, prompt, seed))
        bias = self.prompt_bias(prompt)
        shape_p = _STYLES.get(style, _STYLES["mixed"])
        temp = max(temperature, 1e-3)

        def pick(logits: np.ndarray) -> int:
            if temperature <= 0:
                return int(np.argmax(logits))
            z = (logits - logits.max()) / temp
            p = np.exp(z)
            return int(rng.choice(len(p), p=p / p.sum()))

        def sentence(words: int, *, bold_first: bool = False) -> Iterator[str]:
            prev = pick(self.start + bias)
            first = VOCABULARY[prev].capitalize()
            yield f"**{first}**" if bold_first else first
            for _ in range(words - 1):
                logits = self.weights[prev] + bias
                logits[prev] -= 8.0  # no "the the"
                prev = pick(logits)
                word = VOCABULARY[prev]
                if rng.random() < shape_p["bold"]:
                    word = f"**{word}**"
                yield " " + word
            yield "."

        shapes = ("paragraphs", "bullets", "numbered")
        probs = np.array([shape_p[s] for s in shapes])
        shape = shapes[int(rng.choice(3, p=probs / probs.sum()))]
        if rng.random() < shape_p["heading"]:
            yield "## "
            yield from (p for p in sentence(int(rng.integers(2, 5))) if p != ".")
            yield "\n\n"
        while True:  # endless: paragraphs or lists until the caller has enough
            if shape == "paragraphs":
                for k in range(int(rng.integers(2, 5))):
                    if k:
                        yield " "
                    yield from sentence(int(rng.integers(5, 13)))
                yield "\n\n"
            else:
                yield from sentence(int(rng.integers(4, 9)))
                yield "\n\n"
                for k in range(int(rng.integers(3, 6))):
                    yield f"{k + 1}. " if shape == "numbered" else "- "
                    yield from sentence(int(rng.integers(3, 9)), bold_first=rng.random() < 0.5)
                    yield "\n"
                yield "\n"


@dataclass(frozen=True, slots=True)
class _Job:
    """One request, checked and resolved against the model's defaults."""

    prompt: str
    prompt_tokens: int
    n: int
    max_tokens: int | None
    temperature: float
    seed: int
    stops: list[str]
    preface: str
    verdict: str | None = None  # the verdict format a judge or labeller prompt asks for


class DemoProvider(Provider):
    """A demo model behind the ``Provider`` interface (chat, completions, embeddings)."""

    def __init__(
        self,
        name: str,
        *,
        style: str = "mixed",
        tokens_per_s: float = 30.0,
        answer_tokens: tuple[int, int] = (40, 160),
        params: dict[str, Any] | None = None,
        capabilities: frozenset[str] = frozenset({"text", "completions", "embeddings"}),
    ) -> None:
        if style not in _STYLES:
            raise ValueError(f"demo style must be one of {sorted(_STYLES)}, not {style!r}")
        self.name = name
        self.style = style
        self.tokens_per_s = tokens_per_s
        self.answer_tokens = answer_tokens
        self.params = dict(params or {})
        self.model = DemoLanguageModel.from_name(name)
        self.info = ProviderInfo(
            kind="demo",
            upstream_model=name,
            capabilities=frozenset(capabilities),
            supports_completions=True,
            supports_embeddings=True,
        )

    def _param(self, value: Any, key: str, default: Any) -> Any:
        return value if value is not None else self.params.get(key, default)

    async def _stream(
        self, job_of: Callable[[Any], _Job], request: ChatCompletionRequest | CompletionRequest
    ) -> AsyncIterator[Delta]:
        job = job_of(request)  # in the generator: a refused request raises on iteration
        delay = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        completion_tokens = 0
        for index in range(job.n):
            seed = job.seed + index
            rng = np.random.default_rng(_seed("length", self.name, job.prompt, seed))
            natural = int(rng.integers(self.answer_tokens[0], self.answer_tokens[1] + 1))
            stop = StopMatcher(job.stops)
            if job.verdict is not None:
                # A judgement ends with its verdict, not at a natural length.
                natural = 1 << 30
                source = (
                    label_pieces(self.name, job.prompt, seed=seed)
                    if job.verdict == LABELS
                    else judgement_pieces(self.name, job.prompt, kind=job.verdict, seed=seed)
                )
            else:
                source = self.model.pieces(
                    job.prompt, seed=seed, temperature=job.temperature, style=self.style
                )
            finish, produced, last = "stop", 0, ""
            if job.preface:
                yield Delta(text=job.preface, index=index)
            for piece in source:
                if job.max_tokens is not None and produced >= job.max_tokens:
                    finish = "length"
                    break
                if produced >= natural and last in (".", "\n", "\n\n"):
                    break  # a natural end, at the end of a sentence
                await asyncio.sleep(delay)
                produced += 1
                last = piece
                text = stop.feed(piece)
                if text:
                    yield Delta(text=text, index=index)
                if stop.stopped:
                    break
            tail = stop.flush()
            if tail:
                yield Delta(text=tail, index=index)
            completion_tokens += produced
            yield Delta(index=index, finish_reason=finish)
        yield Delta(
            usage=TokenUsage(prompt_tokens=job.prompt_tokens, completion_tokens=completion_tokens)
        )

    def _chat_job(self, request: ChatCompletionRequest) -> _Job:
        if request.tools:
            raise NotSupported(f"demo model {self.name!r} does not call tools")
        if request.logprobs:
            raise NotSupported(f"demo model {self.name!r} does not return logprobs")
        images = sum(len(m.images()) for m in request.messages)
        if images and "vision" not in self.info.capabilities:
            raise BadRequest(f"model {self.name!r} does not accept images", param="messages")
        user = [m.text() for m in request.messages if m.role == "user"]
        prompt = user[-1] if user else request.messages[-1].text()
        # A labeller prompt quotes a user's prompt, which may look like a judge's: its own
        # request for JSON labels, at the end, decides first.
        verdict = LABELS if labeller_shape(prompt) else None
        return _Job(
            prompt=prompt,
            prompt_tokens=sum(approx_words(m.text()) + 3 for m in request.messages),
            n=request.n or 1,
            max_tokens=self._param(request.token_limit(), "max_tokens", None),
            temperature=float(self._param(request.temperature, "temperature", 0.8)),
            seed=int(self._param(request.seed, "seed", 0)),
            stops=request.stop_list(),
            preface=f"I see {images} image{'s' if images != 1 else ''}. " if images else "",
            verdict=verdict or verdict_format("\n".join(m.text() for m in request.messages)),
        )

    def _completion_job(self, request: CompletionRequest) -> _Job:
        try:
            prompts = request.prompts()
        except ValueError as e:
            raise BadRequest(str(e), param="prompt") from None
        if len(prompts) != 1:
            raise NotSupported("demo models take one prompt per completion request", param="prompt")
        return _Job(
            prompt=prompts[0],
            prompt_tokens=approx_words(prompts[0]),
            n=request.n or 1,
            max_tokens=request.max_tokens,
            temperature=float(self._param(request.temperature, "temperature", 0.8)),
            seed=int(self._param(request.seed, "seed", 0)),
            stops=request.stop_list(),
            preface=prompts[0] if request.echo else "",
        )

    def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        return self._stream(self._chat_job, request)

    def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        return self._stream(self._completion_job, request)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Bag-of-words vectors (feature hashing), L2-normalised: each distinct word adds its
        count, with signs taken from a hash of the word, at a few positions taken from the
        same hash. The work grows with the text, not with ``dimensions``."""
        try:
            texts = request.texts()
        except ValueError as e:
            raise BadRequest(str(e), param="input") from None
        dims = request.dimensions or 64
        # Off the event loop: a long input takes a while even at a few µs per word.
        vectors = await asyncio.to_thread(self._embed_texts, texts, dims)
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(approx_words(t) for t in texts))

    def _embed_texts(self, texts: list[str], dims: int) -> list[list[float]]:
        hashes: dict[str, bytes] = {}  # word -> _EMBED_SLOTS little-endian uint32s

        def word_hash(word: str) -> bytes:
            if word not in hashes:
                key = f"{self.name}\x1f{word}".encode()
                hashes[word] = hashlib.blake2b(key, digest_size=4 * _EMBED_SLOTS).digest()
            return hashes[word]

        vectors = []
        for text in texts:
            counts = Counter(re.findall(r"\w+", text.lower()) or [""])
            raw = b"".join(map(word_hash, counts))
            h = np.frombuffer(raw, dtype="<u4").reshape(len(counts), _EMBED_SLOTS)
            positions = (h & 0x7FFFFFFF) % dims
            weights = np.where(h >> 31, -1.0, 1.0) * np.array(list(counts.values()))[:, None]
            acc = np.bincount(positions.ravel(), weights=weights.ravel(), minlength=dims)
            norm = np.linalg.norm(acc)
            vectors.append((acc / norm if norm else acc).tolist())
        return vectors

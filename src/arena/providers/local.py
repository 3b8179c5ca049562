"""A local Hugging Face transformers model as a provider (``provider: local``).

torch and transformers are imported only when the model loads, so the rest of the package
works without them (install ``arena[local]``). The model loads on first use (or with
``await provider.load()``): ``AutoTokenizer`` + ``AutoModelForCausalLM`` from
``model_path``, on ``device`` (``auto``: CUDA, then MPS, then CPU; float32 on CPU,
bfloat16/float16 on GPU).

Generation is a plain decode loop with ``past_key_values``: one forward pass per token,
each run in a worker thread (``asyncio.to_thread``) so the event loop stays free. That
makes cancellation exact — when the consumer stops iterating or its task is cancelled,
the loop makes no further step and the request's cache is dropped — and gives each request
its own ``torch.Generator`` so ``seed`` is reproducible under concurrency. Requests beyond
``max_concurrency`` wait on an ``asyncio.Semaphore``. There is no batching across requests:
for throughput, serve models with vLLM/SGLang/TGI and use the OpenAI-compatible adapter.

Chat prompts use the tokenizer's chat template (a plain "role: text" layout when it has
none). Sampling: ``temperature`` (0 = greedy; default 1.0), ``top_p``, ``seed``,
``max_tokens``, ``stop`` strings (never emitted), ``n`` (choices generated one after the
other) and vLLM's ``ignore_eos`` extra (generate exactly ``max_tokens``, for benchmarks).
A prompt that does not fit the context window (``max_position_embeddings``), or one that
leaves no room for an explicit ``max_tokens``, is ``ContextLengthExceeded`` (400).

Embeddings are the mean of the last hidden layer over the input's tokens, L2-normalised.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from arena.errors import BadRequest, ContextLengthExceeded, NotSupported, UpstreamError
from arena.protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest
from arena.providers.base import Delta, EmbeddingResult, Provider, ProviderInfo, TokenUsage
from arena.providers.stop_strings import StopMatcher

DEFAULT_CHAT_MAX_TOKENS = 256


@dataclass(frozen=True, slots=True)
class LoadedModel:
    model: Any
    tokenizer: Any
    device: Any
    context_length: int
    eos_ids: frozenset[int]


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _load_weights(model_path: str, dtype: Any, auto_class: Any) -> Any:
    """The model's weights; a LoRA adapter directory (``arena train --lora --adapter-only``
    writes one) is loaded on its base model and merged, so decoding costs what the base's does.
    """
    from pathlib import Path

    if not (Path(model_path) / "adapter_config.json").is_file():
        return auto_class.from_pretrained(model_path, dtype=dtype)
    try:
        from peft import AutoPeftModelForCausalLM
    except ImportError as e:
        raise UpstreamError(
            f"{model_path} is a LoRA adapter; loading it needs peft (pip install "
            f"'arena[train]'): {e}"
        ) from None
    return AutoPeftModelForCausalLM.from_pretrained(model_path, dtype=dtype).merge_and_unload()


def load_model(model_path: str, device: str = "auto") -> LoadedModel:
    """Load tokenizer and model (blocking; call from a thread)."""
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        raise UpstreamError(
            f"local models need torch and transformers (pip install 'arena[local]'): {e}"
        ) from None
    where = resolve_device(device)
    if where == "cpu":
        dtype = torch.float32
    elif where.startswith("cuda") and torch.cuda.is_bf16_supported():
        dtype = torch.bfloat16
    else:
        dtype = torch.float16
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = _load_weights(model_path, dtype, AutoModelForCausalLM)
        model.to(where)
        model.eval()
    except Exception as e:  # a corrupt file raises the loader's own errors (SafetensorError...)
        raise UpstreamError(
            f"cannot load local model from {model_path}: {type(e).__name__}: {e}"
        ) from None
    config = model.config
    context = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    if not context:
        limit = getattr(tokenizer, "model_max_length", None)
        context = limit if limit and limit < 10_000_000 else 2048
    eos: set[int] = set()
    for source in (getattr(model, "generation_config", None), config, tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            eos.add(value)
        elif isinstance(value, (list, tuple)):
            eos.update(int(v) for v in value)
    return LoadedModel(model, tokenizer, torch.device(where), int(context), frozenset(eos))


class _IncrementalDecoder:
    """Text of newly generated tokens, decoding a short window instead of everything, and
    waiting while a multi-byte character is still incomplete."""

    __slots__ = ("_ids", "_prefix", "_read", "_tokenizer")

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def add(self, token: int) -> str:
        self._ids.append(token)
        decode = self._tokenizer.decode
        before = decode(self._ids[self._prefix : self._read], skip_special_tokens=True)
        after = decode(self._ids[self._prefix :], skip_special_tokens=True)
        if len(after) > len(before) and not after.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return after[len(before) :]
        return ""


class _Sampler:
    """One request's decoding state: the KV cache, the next input and its RNG."""

    def __init__(
        self,
        loaded: LoadedModel,
        prompt_ids: list[int],
        temperature: float,
        top_p: float,
        seed: int,
    ) -> None:
        import torch

        self._torch = torch
        self._loaded = loaded
        self._cache: Any = None
        self._input = torch.tensor([prompt_ids], device=loaded.device)
        self._temperature = temperature
        self._top_p = top_p
        self._generator = torch.Generator(device=loaded.device).manual_seed(seed)

    def step(self) -> int:
        torch = self._torch
        with torch.inference_mode():
            out = self._loaded.model(
                input_ids=self._input, past_key_values=self._cache, use_cache=True
            )
            self._cache = out.past_key_values
            logits = out.logits[0, -1].float()
            if self._temperature <= 1e-5:
                token = int(torch.argmax(logits))
            else:
                probs = torch.softmax(logits / self._temperature, dim=-1)
                if self._top_p < 1.0:
                    sorted_p, order = torch.sort(probs, descending=True)
                    keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < self._top_p
                    keep[0] = True
                    probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
                token = int(torch.multinomial(probs, 1, generator=self._generator))
            self._input = torch.tensor([[token]], device=self._loaded.device)
            return token


class LocalProvider(Provider):
    def __init__(
        self,
        model_path: str,
        *,
        name: str | None = None,
        device: str = "auto",
        max_concurrency: int = 4,
        params: dict[str, Any] | None = None,
        capabilities: frozenset[str] = frozenset({"text"}),
    ) -> None:
        self.model_path = str(model_path)
        self.name = name or self.model_path
        self.device = device
        self.params = dict(params or {})
        self.max_concurrency = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._loading: asyncio.Future[LoadedModel] | None = None
        self._loaded: LoadedModel | None = None
        # What a worker's heartbeat reports, and what tests check cancellation with.
        self.running = 0
        self.waiting = 0
        self.steps = 0
        self.info = ProviderInfo(
            kind="local",
            upstream_model=self.name,
            capabilities=frozenset(capabilities) | {"completions", "embeddings"},
            supports_completions=True,
            supports_embeddings=True,
        )

    @property
    def queue_length(self) -> int:
        return self.running + self.waiting

    async def load(self) -> LoadedModel:
        """The loaded model, loading it once. A caller that gives up waiting (a health
        probe's timeout) does not stop the load: the next caller finds it further along,
        or done. A failed load is tried again by the next caller."""
        if self._loaded is not None:
            return self._loaded
        if self._loading is None or (self._loading.done() and self._loading.exception()):
            self._loading = asyncio.ensure_future(
                asyncio.to_thread(load_model, self.model_path, self.device)
            )
        loaded = await asyncio.shield(self._loading)
        self._loaded = loaded
        return loaded

    @property
    def is_loaded(self) -> bool:
        return self._loaded is not None

    @property
    def context_length(self) -> int | None:
        return self._loaded.context_length if self._loaded else None

    # ------------------------------------------------------------------ prompts

    def _chat_prompt_ids(self, loaded: LoadedModel, request: ChatCompletionRequest) -> list[int]:
        if request.tools:
            raise NotSupported(f"local model {self.name!r} does not call tools", param="tools")
        if request.has_images():
            raise BadRequest(f"local model {self.name!r} does not accept images", param="messages")
        messages = [
            {"role": m.role if m.role != "developer" else "system", "content": m.text()}
            for m in request.messages
        ]
        tokenizer = loaded.tokenizer
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _room(
        self, loaded: LoadedModel, prompt_len: int, requested: int | None, default: int
    ) -> int:
        context = loaded.context_length
        if prompt_len >= context:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {context} tokens, but the prompt has "
                f"{prompt_len} tokens. Shorten the messages.",
                param="messages",
            )
        room = context - prompt_len
        if requested is not None and requested > room:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {context} tokens; the prompt has "
                f"{prompt_len} tokens and max_tokens asks for {requested} more "
                f"(at most {room} fit).",
                param="max_tokens",
            )
        return min(requested or default, room)

    # ------------------------------------------------------------------ generation

    async def _choices(
        self,
        loaded: LoadedModel,
        prompts: list[list[int]],
        *,
        n: int,
        max_tokens: list[int],
        temperature: float,
        top_p: float,
        seed: int | None,
        stops: list[str],
        echo: list[str] | None = None,
        ignore_eos: bool = False,
    ) -> AsyncIterator[Delta]:
        seed = seed if seed is not None else secrets.randbits(63)
        completion_tokens = 0
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            for p, prompt_ids in enumerate(prompts):
                for j in range(n):
                    index = p * n + j
                    if echo:
                        yield Delta(text=echo[p], index=index)
                    sampler = _Sampler(loaded, prompt_ids, temperature, top_p, seed + index)
                    decoder = _IncrementalDecoder(loaded.tokenizer)
                    stop = StopMatcher(stops)
                    finish = "length"
                    for _ in range(max_tokens[p]):
                        try:
                            token = await asyncio.to_thread(sampler.step)
                        except Exception as e:  # torch/CUDA failures become typed errors
                            raise UpstreamError(
                                f"local model {self.name!r} failed while generating: "
                                f"{type(e).__name__}: {e}"
                            ) from e
                        self.steps += 1
                        completion_tokens += 1
                        if token in loaded.eos_ids and not ignore_eos:
                            finish = "stop"
                            break
                        text = stop.feed(decoder.add(token))
                        if text:
                            yield Delta(text=text, index=index)
                        if stop.stopped:
                            finish = "stop"
                            break
                    tail = stop.flush()
                    if tail:
                        yield Delta(text=tail, index=index)
                    yield Delta(index=index, finish_reason=finish)
            prompt_tokens = sum(len(ids) for ids in prompts)
            yield Delta(
                usage=TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
            )
        finally:
            self.running -= 1
            self._semaphore.release()

    def _sampling(self, temperature: float | None, top_p: float | None, seed: int | None):
        t = temperature if temperature is not None else self.params.get("temperature", 1.0)
        p = top_p if top_p is not None else self.params.get("top_p", 1.0)
        s = seed if seed is not None else self.params.get("seed")
        return float(t), float(p), s

    async def stream_chat(self, request: ChatCompletionRequest) -> AsyncIterator[Delta]:
        if request.logprobs:
            raise NotSupported(
                f"local model {self.name!r} does not return logprobs", param="logprobs"
            )
        loaded = await self.load()
        ids = self._chat_prompt_ids(loaded, request)
        default = int(self.params.get("max_tokens", DEFAULT_CHAT_MAX_TOKENS))
        limit = self._room(loaded, len(ids), request.token_limit(), default)
        temperature, top_p, seed = self._sampling(request.temperature, request.top_p, request.seed)
        choices = self._choices(
            loaded,
            [ids],
            n=request.n or 1,
            max_tokens=[limit],
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stops=request.stop_list(),
            ignore_eos=bool((request.model_extra or {}).get("ignore_eos")),
        )
        # aclosing: stopping early gives the concurrency slot back now, not when collected.
        async with aclosing(choices):
            async for delta in choices:
                yield delta

    async def stream_completion(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        if request.logprobs:
            raise NotSupported(
                f"local model {self.name!r} does not return logprobs", param="logprobs"
            )
        if request.suffix:
            raise NotSupported(f"local model {self.name!r} does not support suffix", param="suffix")
        try:
            texts = request.prompts()
        except ValueError as e:
            raise BadRequest(str(e), param="prompt") from None
        loaded = await self.load()
        prompts = [list(loaded.tokenizer(t)["input_ids"]) for t in texts]
        if not prompts or not all(prompts):
            raise BadRequest("the prompt must not be empty", param="prompt")
        limits = [self._room(loaded, len(ids), request.max_tokens, 16) for ids in prompts]
        temperature, top_p, seed = self._sampling(request.temperature, request.top_p, request.seed)
        choices = self._choices(
            loaded,
            prompts,
            n=request.n or 1,
            max_tokens=limits,
            temperature=temperature,
            top_p=top_p,
            seed=seed,
            stops=request.stop_list(),
            echo=texts if request.echo else None,
            ignore_eos=bool((request.model_extra or {}).get("ignore_eos")),
        )
        # aclosing: stopping early gives the concurrency slot back now, not when collected.
        async with aclosing(choices):
            async for delta in choices:
                yield delta

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        try:
            texts = request.texts()
        except ValueError as e:
            raise BadRequest(str(e), param="input") from None
        loaded = await self.load()
        ids = [list(loaded.tokenizer(t)["input_ids"]) for t in texts]
        for row in ids:
            if len(row) > loaded.context_length:
                raise ContextLengthExceeded(
                    f"an input has {len(row)} tokens; this model reads at most "
                    f"{loaded.context_length}",
                    param="input",
                )
            if not row:
                raise BadRequest("inputs must not be empty strings", param="input")
        async with self._semaphore:
            vectors = await asyncio.to_thread(_mean_pooled, loaded, ids)
        if request.dimensions and request.dimensions < len(vectors[0]):
            vectors = [_normalise(v[: request.dimensions]) for v in vectors]
        return EmbeddingResult(vectors=vectors, prompt_tokens=sum(len(r) for r in ids))

    async def health(self) -> bool:
        try:
            await self.load()
        except UpstreamError:
            return False
        return True

    async def aclose(self) -> None:
        loaded, self._loaded, self._loading = self._loaded, None, None
        if loaded is not None and loaded.device.type == "cuda":
            import torch

            del loaded
            torch.cuda.empty_cache()


def _mean_pooled(loaded: LoadedModel, rows: list[list[int]]) -> list[list[float]]:
    import torch

    vectors = []
    with torch.inference_mode():
        for row in rows:
            out = loaded.model(
                input_ids=torch.tensor([row], device=loaded.device), output_hidden_states=True
            )
            pooled = out.hidden_states[-1][0].float().mean(dim=0)
            vectors.append(torch.nn.functional.normalize(pooled, dim=0).tolist())
    return vectors


def _normalise(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else vector

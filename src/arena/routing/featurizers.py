"""Prompts as vectors: an offline TF-IDF, and any ``/v1/embeddings`` model through providers.

Both return L2-normalised rows so a dot product is a cosine similarity. TF-IDF is built by
hand on scipy sparse matrices (no extra dependency, ships nothing, runs with no model at all);
its vocabulary and IDF weights are fitted on the training prompts and saved with a router.
Embeddings go through an Arena ``Provider`` and are cached on disk by a hash of (model,
prompt), so re-training or re-evaluating never pays for the same prompt twice.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from arena.routing.errors import RoutingError

_RECENT_LIMIT = 4096  # vectors an embeddings featuriser keeps in memory
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def prompt_hash(text: str) -> str:
    """A stable short id of a prompt (splits, caches and held-out checks key on it)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _tokens(text: str, ngrams: int) -> list[str]:
    words = _WORD.findall(text.lower())
    grams = list(words)
    for n in range(2, ngrams + 1):
        grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


class Featurizer(Protocol):
    kind: str

    def transform(self, prompts: Sequence[str]) -> np.ndarray | sp.csr_matrix: ...

    @property
    def dimension(self) -> int: ...

    def config(self) -> dict[str, Any]: ...

    def arrays(self) -> dict[str, np.ndarray]: ...


class TfidfFeaturizer:
    """Word (and word n-gram) TF-IDF with sublinear term frequency and smoothed IDF."""

    kind = "tfidf"

    def __init__(self, vocabulary: Sequence[str], idf: np.ndarray, ngrams: int = 2) -> None:
        self.vocabulary = tuple(vocabulary)
        self.index = {t: i for i, t in enumerate(self.vocabulary)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.ngrams = ngrams

    @classmethod
    def fit(
        cls,
        prompts: Sequence[str],
        *,
        ngrams: int = 2,
        min_df: int = 2,
        max_features: int = 50_000,
    ) -> TfidfFeaturizer:
        """Vocabulary: terms in at least ``min_df`` prompts, the ``max_features`` most frequent."""
        if not prompts:
            raise RoutingError("no prompts to fit the TF-IDF featuriser on")
        unique = list(dict.fromkeys(prompts))
        df: Counter[str] = Counter()
        for text in unique:
            df.update(set(_tokens(text, ngrams)))
        # A handful of prompts share few words: keep every term rather than none.
        floor = min_df if len(unique) >= 50 else 1
        terms = [(t, c) for t, c in df.items() if c >= floor]
        terms.sort(key=lambda tc: (-tc[1], tc[0]))
        terms = terms[:max_features]
        if not terms:
            raise RoutingError("the prompts share no words: nothing to build TF-IDF features from")
        terms.sort()
        n = len(unique)
        idf = np.array([math.log((1 + n) / (1 + c)) + 1.0 for _, c in terms])
        return cls([t for t, _ in terms], idf, ngrams)

    @property
    def dimension(self) -> int:
        return len(self.vocabulary)

    def transform(self, prompts: Sequence[str]) -> sp.csr_matrix:
        # Rows are normalised as they are built: a request's one prompt costs one small
        # matrix construction, not four sparse operations.
        indptr, cols, vals = [0], [], []
        idf = self.idf
        for text in prompts:
            counts = Counter(self.index[t] for t in _tokens(text, self.ngrams) if t in self.index)
            row = [(1.0 + math.log(k)) * idf[c] for c, k in counts.items()]
            norm = math.sqrt(sum(v * v for v in row)) or 1.0
            cols.extend(counts)
            vals.extend(v / norm for v in row)
            indptr.append(len(cols))
        return sp.csr_matrix(
            (np.asarray(vals, dtype=np.float64), np.asarray(cols, dtype=np.int64), indptr),
            shape=(len(prompts), self.dimension),
        )

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "ngrams": self.ngrams}

    def arrays(self) -> dict[str, np.ndarray]:
        return {"tfidf_vocabulary": np.array(self.vocabulary, dtype=str), "tfidf_idf": self.idf}


class EmbeddingFeaturizer:
    """Vectors from an embeddings model (any Arena ``Provider`` with ``embed``), cached on disk.

    The cache is one ``.npy`` file per prompt under ``cache_dir/<model hash>/``, named by the
    prompt hash, so concurrent runs and partial runs are both safe.
    """

    kind = "embeddings"

    def __init__(
        self,
        provider: Any,
        model: str,
        *,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        dimension: int | None = None,
    ) -> None:
        if provider is None or not getattr(provider.info, "supports_embeddings", False):
            raise RoutingError(f"model {model!r} does not serve embeddings")
        self.provider = provider
        self.model = model
        self.batch_size = batch_size
        self._dimension = dimension
        self.cache = Path(cache_dir) / prompt_hash(model) if cache_dir else None
        self.calls = 0
        self._loop: Any = None
        # The latest vectors, so a server that awaited ``aembed`` can call the synchronous
        # ``transform`` (through a router) without a second event loop.
        self._recent: dict[str, np.ndarray] = {}

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self._dimension = int(self.transform(["dimension probe"]).shape[1])
        return self._dimension

    def _cached(self, key: str) -> np.ndarray | None:
        if self.cache is None:
            return None
        path = self.cache / f"{key}.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

    def _store(self, key: str, vector: np.ndarray) -> None:
        if self.cache is None:
            return
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f".{key}.tmp.npy"
        np.save(tmp, vector)
        tmp.replace(self.cache / f"{key}.npy")

    async def aembed(self, prompts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``prompts`` (rows L2-normalised), from the cache where present."""
        from arena.protocol import EmbeddingRequest

        keys = [prompt_hash(p) for p in prompts]
        found = {k: v for k in dict.fromkeys(keys) if (v := self._cached(k)) is not None}
        missing = list(dict.fromkeys(p for p in prompts if prompt_hash(p) not in found))
        for start in range(0, len(missing), self.batch_size):
            batch = missing[start : start + self.batch_size]
            request = EmbeddingRequest(model=self.model, input=batch)
            result = await self.provider.embed(request)
            self.calls += 1
            if len(result.vectors) != len(batch):
                raise RoutingError(
                    f"{self.model}: {len(result.vectors)} embeddings for {len(batch)} prompts"
                )
            for text, vector in zip(batch, result.vectors, strict=True):
                arr = np.asarray(vector, dtype=np.float64)
                norm = np.linalg.norm(arr)
                arr = arr / norm if norm else arr
                found[prompt_hash(text)] = arr
                self._store(prompt_hash(text), arr)
        if not prompts:
            return np.zeros((0, self._dimension or 0))
        if len(self._recent) > _RECENT_LIMIT:
            self._recent.clear()
        self._recent.update((k, found[k]) for k in keys)
        return np.vstack([found[k] for k in keys])

    def transform(self, prompts: Sequence[str]) -> np.ndarray:
        """Synchronous ``aembed`` for training and evaluation, outside any event loop. One
        private loop serves every call: a provider's HTTP client stays bound to one loop."""
        import asyncio

        recent = self._recent
        if prompts and all(prompt_hash(p) in recent for p in prompts):
            return np.vstack([recent[prompt_hash(p)] for p in prompts])
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self.aembed(list(prompts)))

    def close(self) -> None:
        """Close the provider and the private loop (the provider's owner may do it instead)."""
        import asyncio

        if self._loop is None:
            asyncio.run(self.provider.aclose())
            return
        self._loop.run_until_complete(self.provider.aclose())
        self._loop.close()
        self._loop = None

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "model": self.model, "dimension": self._dimension}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}


def featurizer_from_saved(
    config: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    embed_provider: Any = None,
    cache_dir: str | Path | None = None,
) -> TfidfFeaturizer | EmbeddingFeaturizer:
    """Rebuild a featuriser saved with a router; an embeddings one needs its provider back."""
    kind = config.get("kind")
    if kind == "tfidf":
        return TfidfFeaturizer(
            [str(t) for t in arrays["tfidf_vocabulary"].tolist()],
            arrays["tfidf_idf"],
            int(config.get("ngrams", 2)),
        )
    if kind == "embeddings":
        if embed_provider is None:
            raise RoutingError(
                f"this router embeds prompts with {config.get('model')!r}: give that model "
                "(--embed-model with a registry that serves it)"
            )
        return EmbeddingFeaturizer(
            embed_provider,
            str(config["model"]),
            cache_dir=cache_dir,
            dimension=config.get("dimension"),
        )
    raise RoutingError(f"unknown featuriser kind {kind!r} in the saved router")


def as_dense(features: np.ndarray | sp.spmatrix) -> np.ndarray:
    return features.toarray() if sp.issparse(features) else np.asarray(features)

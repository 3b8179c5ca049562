"""Trained routers survive a save/load round trip bit for bit, with no pickle on disk; the
embeddings featuriser goes through a real provider and caches by prompt hash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from arena.providers.demo import DemoProvider
from arena.routing.errors import RoutingError
from arena.routing.featurizers import EmbeddingFeaturizer, TfidfFeaturizer
from arena.routing.persistence import load_router, save_router, training_prompts
from arena.routing.training import ROUTERS, train_router

from .conftest import STRONG, WEAK, make_prompts, pair_battles


@pytest.mark.parametrize("kind", ROUTERS)
def test_round_trip(kind, tmp_path):
    data = pair_battles(150, seed=11)
    router = train_router(kind, data, strong=STRONG, weak=WEAK)
    save_router(router, tmp_path / kind, training_prompts=data.prompts, info={"note": "x"})
    loaded = load_router(tmp_path / kind)
    prompts, _ = make_prompts(30, ["math", "chat"], seed=12)
    np.testing.assert_array_equal(loaded.strong_win_rate(prompts), router.strong_win_rate(prompts))
    assert (loaded.kind, loaded.strong, loaded.weak) == (kind, STRONG, WEAK)
    assert loaded.models == router.models
    meta = json.loads((tmp_path / kind / "router.json").read_text())
    assert meta["info"] == {"note": "x"}
    # numbers only: loading with pickles refused works
    with np.load(tmp_path / kind / "arrays.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    assert training_prompts(tmp_path / kind) == list(dict.fromkeys(data.prompts))


def test_bad_router_directories(tmp_path):
    with pytest.raises(RoutingError, match=r"no router\.json"):
        load_router(tmp_path)
    (tmp_path / "router.json").write_text('{"format": "something-else"}')
    with pytest.raises(RoutingError, match="not an arena router"):
        load_router(tmp_path)


def test_tfidf_is_normalised_and_ignores_unknown_words():
    feat = TfidfFeaturizer.fit(["alpha beta gamma", "alpha beta", "beta delta delta"], min_df=1)
    x = feat.transform(["alpha beta", "zzz unknown", "beta delta"]).toarray()
    np.testing.assert_allclose(np.linalg.norm(x[[0, 2]], axis=1), 1.0)
    assert not x[1].any()
    with pytest.raises(RoutingError):
        TfidfFeaturizer.fit([])


def test_embeddings_through_a_provider_with_a_cache(tmp_path):
    provider = DemoProvider("demo-embed")
    feat = EmbeddingFeaturizer(provider, "demo-embed", cache_dir=tmp_path / "cache", batch_size=8)
    data = pair_battles(60, seed=13)
    try:
        router = train_router("mf", data, featurizer=feat, strong=STRONG, weak=WEAK)
        calls = feat.calls
        assert calls == 8  # 60 distinct prompts in batches of 8
        first = feat.transform(list(data.prompts[:5]))
        assert feat.calls == calls  # all from the cache
        np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0)
        assert len(list((tmp_path / "cache").rglob("*.npy"))) == 60
        save_router(router, tmp_path / "r", training_prompts=data.prompts)
        with pytest.raises(RoutingError, match="embeds prompts with 'demo-embed'"):
            load_router(tmp_path / "r")
        again = load_router(tmp_path / "r", embed_provider=provider, cache_dir=tmp_path / "cache")
        prompts = list(data.prompts[:10])
        np.testing.assert_allclose(again.strong_win_rate(prompts), router.strong_win_rate(prompts))
        # a fresh featuriser on the same cache directory makes no new calls for known prompts
        fresh = EmbeddingFeaturizer(provider, "demo-embed", cache_dir=tmp_path / "cache")
        np.testing.assert_allclose(fresh.transform(prompts), feat.transform(prompts))
        assert fresh.calls == 0
    finally:
        feat.close()


def test_a_model_without_embeddings_is_refused():
    provider = DemoProvider("demo-chat", capabilities=frozenset({"text"}))
    provider.info = type(provider.info)(kind="demo", upstream_model="demo-chat")
    with pytest.raises(RoutingError, match="does not serve embeddings"):
        EmbeddingFeaturizer(provider, "demo-chat")

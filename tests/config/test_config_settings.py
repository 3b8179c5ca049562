"""Settings read from ARENA_* environment variables the way people write them."""

from __future__ import annotations

from arena.config import Settings


def test_trusted_proxies_accepts_a_comma_separated_list(monkeypatch):
    monkeypatch.setenv("ARENA_TRUSTED_PROXIES", "10.0.0.1, 10.1.0.0/16")
    assert Settings().trusted_proxies == ["10.0.0.1", "10.1.0.0/16"]


def test_trusted_proxies_single_value_and_default(monkeypatch):
    monkeypatch.setenv("ARENA_TRUSTED_PROXIES", "192.0.2.7")
    assert Settings().trusted_proxies == ["192.0.2.7"]
    monkeypatch.delenv("ARENA_TRUSTED_PROXIES")
    assert Settings().trusted_proxies == []
    assert Settings(trusted_proxies=["127.0.0.1"]).trusted_proxies == ["127.0.0.1"]

"""What a gateway shows to callers without a key: health says up or down and nothing more;
metrics, the OpenAPI schema and its docs page need a key once keys exist (metrics also take
``settings.metrics_token``); the OpenAI routes are in the schema with their protocol models.
"""

from __future__ import annotations

import time

import httpx
import pytest

from arena.store.db import Database
from arena.store.keys import create_api_key
from arena.store.migrate import upgrade

OPERATOR_PATHS = ("/metrics", "/openapi.json", "/docs")


def _key(settings) -> str:
    """A new API key in the gateway's store (migrated first, as ``arena keys`` does)."""
    upgrade(settings.resolved_database_url())
    db = Database(settings.resolved_database_url())
    try:
        return create_api_key(db, "operator")[0]
    finally:
        db.dispose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _wait_until_keyed(url: str, settings) -> None:
    """Key counts are cached for ``key_cache_ttl_s``: wait until the gateway sees the key."""
    deadline = time.monotonic() + 30
    while httpx.get(url + "/v1/models").status_code != 401:
        assert time.monotonic() < deadline, "the gateway never noticed its first API key"
        time.sleep(settings.key_cache_ttl_s)


def test_health_says_only_up_or_down(gateway):
    url, app, _ = gateway
    response = httpx.get(url + "/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    # Nothing about what is served: no model names, versions or counts.
    assert "standin" not in response.text and "in_flight" not in response.text

    app.state.gateway.serving = False  # as while it starts or drains for a shutdown
    down = httpx.get(url + "/health")
    assert down.status_code == 503 and down.json() == {"status": "down"}
    app.state.gateway.serving = True


def test_health_is_down_when_the_key_store_cannot_be_read(gateway):
    from arena.gateway.auth import KeyAuthenticator

    url, app, _ = gateway
    nowhere = Database("postgresql+psycopg://arena@127.0.0.1:1/none?connect_timeout=2")
    gw = app.state.gateway
    real = gw.access
    gw.access = KeyAuthenticator(nowhere, ttl_s=0)
    try:
        down = httpx.get(url + "/health", timeout=30)
        assert down.status_code == 503 and down.json() == {"status": "down"}
    finally:
        gw.access = real
        nowhere.dispose()
    assert httpx.get(url + "/health").json() == {"status": "ok"}


def test_an_open_gateway_shows_metrics_schema_and_docs(gateway):
    url, _, _ = gateway
    for path in OPERATOR_PATHS:
        assert httpx.get(url + path).status_code == 200, path
    assert httpx.get(url + "/redoc").status_code == 404


def test_metrics_schema_and_docs_need_a_key_once_keys_exist(
    standin, gateway_factory, make_settings, make_providers, own_database_url
):
    """The attack: with keys configured, read traffic, model names and the whole API
    surface without one. Every operator endpoint now answers 401; /health stays open."""
    _, api_root = standin
    settings = make_settings(database_url=own_database_url)
    key = _key(settings)
    with gateway_factory(settings, make_providers(api_root, settings)) as (url, _):
        _wait_until_keyed(url, settings)
        for path in OPERATOR_PATHS:
            for headers in ({}, _bearer("sk-arena-not-a-real-key")):
                refused = httpx.get(url + path, headers=headers)
                assert refused.status_code == 401, (path, headers)
                assert refused.json()["error"]["type"] == "authentication_error"
                assert "standin" not in refused.text and "arena_requests" not in refused.text
            assert httpx.get(url + path, headers=_bearer(key)).status_code == 200, path
        assert "arena_requests_total" in httpx.get(url + "/metrics", headers=_bearer(key)).text
        assert httpx.get(url + "/health").json() == {"status": "ok"}


def test_the_metrics_token_reads_metrics_only(
    standin, gateway_factory, make_settings, make_providers
):
    _, api_root = standin
    settings = make_settings(metrics_token="scrape-me-please")
    key = _key(settings)
    with gateway_factory(settings, make_providers(api_root, settings)) as (url, _):
        _wait_until_keyed(url, settings)
        scraper = _bearer("scrape-me-please")
        assert httpx.get(url + "/metrics", headers=scraper).status_code == 200
        assert httpx.get(url + "/metrics", headers=_bearer(key)).status_code == 200
        assert httpx.get(url + "/metrics", headers=_bearer("scrape-me")).status_code == 401
        # It is a metrics token, not an API key.
        assert httpx.get(url + "/openapi.json", headers=scraper).status_code == 401
        assert httpx.get(url + "/v1/models", headers=scraper).status_code == 401


def test_a_metrics_token_closes_metrics_on_an_open_gateway(
    standin, gateway_factory, make_settings, make_providers
):
    _, api_root = standin
    settings = make_settings(metrics_token="scrape-me-please")
    with gateway_factory(settings, make_providers(api_root, settings)) as (url, _):
        assert httpx.get(url + "/metrics").status_code == 401
        assert httpx.get(url + "/metrics", headers=_bearer("wrong")).status_code == 401
        assert httpx.get(url + "/metrics", headers=_bearer("scrape-me-please")).status_code == 200
        assert httpx.get(url + "/v1/models").status_code == 200  # the gateway itself is open


def test_openai_routes_are_in_the_schema_with_their_models(gateway):
    url, _, _ = gateway
    schema = httpx.get(url + "/openapi.json").json()
    paths = schema["paths"]
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    answer = chat["responses"]["200"]["content"]
    assert answer["application/json"]["schema"] == {"$ref": "#/components/schemas/ChatCompletion"}
    assert "ChatCompletionChunk" in str(answer["text/event-stream"])
    assert {"400", "401", "404", "413", "429"} <= set(chat["responses"])
    assert "Completion" in str(paths["/v1/completions"]["post"]["responses"]["200"])
    assert "EmbeddingResponse" in str(paths["/v1/embeddings"]["post"]["responses"]["200"])
    assert "ModelList" in str(paths["/v1/models"]["get"]["responses"]["200"])
    assert "ModelCard" in str(paths["/v1/models/{model}"]["get"]["responses"]["200"])
    assert "ChatCompletionChunk" in schema["components"]["schemas"]
    board = paths["/api/leaderboard"]["get"]["responses"]
    assert {"200", "400", "404"} <= set(board)
    assert "ErrorResponse" in str(board["404"]) and "ErrorResponse" in str(board["400"])
    assert "LeaderboardData" in str(board["200"])


@pytest.mark.parametrize("stream", [False, True])
def test_the_schema_twins_never_answer_a_request(gateway, stream):
    """The schema-only routes must not take requests from the fast lane: answers still come
    from the real handlers (they name the backend that answered)."""
    url, _, _ = gateway
    body = {"model": "standin", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=10) as response:
        response.read()
    assert response.status_code == 200 and response.headers["x-arena-backend"]
    card = httpx.get(url + "/v1/models/standin")
    assert card.status_code == 200 and card.json()["id"] == "standin"


@pytest.mark.browser
def test_the_docs_page_works_offline_under_its_own_policy(gateway):
    """The docs page once pulled Swagger UI from a CDN, unpinned, into the gateway's own
    origin (where it could register workers in open mode). Now every file it loads comes
    from the gateway, inline scripts are forbidden, and it still renders the operations."""
    from playwright.sync_api import expect, sync_playwright

    from support.browser import launch_chromium

    url, _, _ = gateway
    page_response = httpx.get(url + "/docs")
    policy = page_response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page_response.headers["x-frame-options"] == "DENY"
    assert "cdn" not in page_response.text and "<script>" not in page_response.text
    assert httpx.get(url + "/docs/assets/nothing-here.js").status_code == 404

    requested: list[str] = []
    violations: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requested.append(r.url))
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else 0,
            )
            page.goto(url + "/docs")
            expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions").first)\
                .to_be_visible(timeout=60_000)  # fmt: skip
        finally:
            browser.close()
    assert requested and all(r.startswith(url) for r in requested), requested
    assert not violations, violations

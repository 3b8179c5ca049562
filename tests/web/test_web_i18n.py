"""The UI's translation layer: every string the templates and page scripts show is in the
Spanish catalog, the language follows the browser (or the picker), and the page still tells
nothing of the battle's models, in either language, even when an answer fails.

Browser runs are in test_web_i18n_browser.py; the text the server writes (stream notices,
the leaderboard's warnings, categories and charts) in test_web_i18n_server_text.py."""

from __future__ import annotations

import difflib
import importlib.util
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po

from arena.battles.pair_sampler import SampledPair
from arena.web.i18n import I18n, parse_accept_language
from support.web_fakes import ArenaClient, ScriptedProvider, parse_sse

ROOT = Path(__file__).resolve().parents[2]
SPANISH = "es-ES,es;q=0.9,en;q=0.8"
ANSWER = "Here is an answer with code:\n\n```python\nprint('hola')\n```\n"


def _i18n_script() -> Any:
    """scripts/i18n.py, the catalogs' own extraction (loaded by path: scripts/ is no package)."""
    spec = importlib.util.spec_from_file_location("arena_i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> Any:
    return _i18n_script()


def _catalog(lang: str) -> Any:
    path = ROOT / "src" / "arena" / "web" / "locales" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        return read_po(f, locale=lang)


# --- (1) catalog completeness --------------------------------------------------------------


def test_every_message_of_the_templates_and_scripts_is_translated_to_spanish(script):
    """Extracted now from the sources, so a new string without its translation fails here."""
    template = script.extract_catalog()
    where = {path.split("/")[-1] for m in template for path, _ in m.locations}
    # Each kind of source gave messages (an extractor that silently finds nothing would
    # make the check below vacuous).
    assert {"arena.js", "leaderboard.js", "base.html", "_chat.html", "pages.py"} <= where
    assert len([m for m in template if m.id]) > 100
    assert script.problems(template, _catalog("es")) == []
    # English is the source language: its catalog must know every message, text optional.
    assert script.problems(template, _catalog("en"), need_text=False) == []


def test_the_completeness_check_catches_missing_and_garbled_translations(script):
    template = script.extract_catalog()
    spanish = _catalog("es")
    spanish.delete("Waiting for the answers…")
    spanish["Your image: %(name)s"].string = "Tu imagen: %(nombre)s"
    spanish["Copy"].string = ""
    found = script.problems(template, spanish)
    assert "missing: 'Waiting for the answers…'" in found
    assert any(p.startswith("placeholders differ: 'Your image") for p in found)
    assert "untranslated: 'Copy'" in found
    assert len(found) == 3


class _VisibleText(HTMLParser):
    """Text a reader meets on a page: text nodes and the attributes browsers show or read
    out, outside scripts, styles and code."""

    SKIP = frozenset({"script", "style", "code", "pre", "kbd", "time"})
    ATTRS = frozenset({"title", "aria-label", "placeholder", "alt"})

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        for name, value in attrs:
            if name in self.ATTRS and value:
                self.found.append(" ".join(value.split()))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text and not self.skipping:
            self.found.append(text)


def _visible(html: str) -> set[str]:
    parser = _VisibleText()
    parser.feed(html)
    return {t for t in parser.found if re.search(r"[A-Za-z]{3}", t) and not t.startswith("/")}


# Words that read the same in both languages: names, the brand, technical terms.
SAME_IN_BOTH = {"Arena", "English", "Español", "demo", "Elo", "MT-Bench", "Arena-Hard", "UTC"}


def test_no_page_keeps_english_text_in_spanish(arena_server):
    """Each page rendered in both languages: any text identical in both, but for names,
    escaped the translation layer."""
    arena = arena_server([ScriptedProvider("tiger-text-1"), ScriptedProvider("lynx-text-2")])
    client = arena.client()
    battle_id = client.new_battle()
    client.send(battle_id, "Hello")
    voted = client.vote(battle_id, "tie")
    assert voted.status_code == 200, voted.text
    pages = ["/", "/side-by-side", "/direct", "/about", "/history", "/leaderboard", "/share/0-x"]
    pages.append(voted.json()["share_url"])
    for path in pages:
        english = client.get(path, headers={"Accept-Language": "en"}).text
        spanish = client.get(path, headers={"Accept-Language": "es"}).text
        assert '<html lang="es">' in spanish and '<html lang="en">' in english
        same = _visible(spanish) & _visible(english)
        same -= SAME_IN_BOTH | {"tiger-text-1", "lynx-text-2", "Hello", "A plain answer."}
        assert not same, f"{path}: untranslated {sorted(same)}"
    client.close()


# --- (2) negotiation -----------------------------------------------------------------------


def test_accept_language_is_ranked_by_q_values():
    assert parse_accept_language(SPANISH) == ["es-ES", "es", "en"]
    assert parse_accept_language("en;q=0.5, es;q=0.9, fr") == ["fr", "es", "en"]
    assert parse_accept_language("es;q=0, en-GB;q=0.7, *;q=0.1") == ["en-GB"]
    assert parse_accept_language("de;q=oops, es") == ["es"]
    assert parse_accept_language("") == []
    i18n = I18n()
    assert set(i18n.languages) >= {"en", "es"}
    assert i18n.match(parse_accept_language("pt-BR, es-MX;q=0.8")) == "es"
    assert i18n.match(parse_accept_language("fr, de")) is None


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        (SPANISH, "es"),
        ("fr", "en"),
        ("fr-CA, es;q=0.5", "es"),
        ("en;q=0.5, es;q=0.9", "es"),
        ("es;q=0.4, en;q=0.9", "en"),
        ("es;q=0, en", "en"),
        ("", "en"),
    ],
)
def test_the_page_language_follows_the_browser(arena_server, accept, lang):
    arena = arena_server([ScriptedProvider("one-model"), ScriptedProvider("two-model")])
    with httpx.Client(base_url=arena.url) as http:
        page = http.get("/", headers={"Accept-Language": accept})
    assert page.status_code == 200
    assert f'<html lang="{lang}">' in page.text
    heading = "Batalla: dos modelos anónimos" if lang == "es" else "Battle: two anonymous models"
    assert heading in page.text
    assert "Accept-Language" in page.headers.get("vary", "")


def test_lang_parameter_overrides_and_is_remembered(arena_server):
    arena = arena_server([ScriptedProvider("one-model"), ScriptedProvider("two-model")])
    with httpx.Client(base_url=arena.url, headers={"Accept-Language": "en-US,en"}) as http:
        chosen = http.get("/about", params={"lang": "es"})
        assert '<html lang="es">' in chosen.text and "Acerca de esta arena" in chosen.text
        assert http.cookies.get("lang") == "es"
        # The cookie keeps the choice on every page, the leaderboard's included.
        assert "<h1>Clasificación</h1>" in http.get("/leaderboard").text
        assert "<h1>Tus batallas</h1>" in http.get("/history").text
        back = http.get("/", params={"lang": "en"})
        assert '<html lang="en">' in back.text and http.cookies.get("lang") == "en"
        # An unknown language is no error: the usual choice stands.
        odd = http.get("/", params={"lang": "xx-nope"})
        assert odd.status_code == 200 and '<html lang="en">' in odd.text
    with httpx.Client(base_url=arena.url) as http:
        spanish = http.get("/", params={"lang": "es"}, headers={"Accept-Language": "en"})
        assert (
            "A es mejor" in spanish.text and 'aria-label="¿Qué respuesta es mejor?"' in spanish.text
        )


def test_the_page_embeds_the_scripts_strings_for_its_language(arena_server):
    arena = arena_server([ScriptedProvider("one-model"), ScriptedProvider("two-model")])
    with httpx.Client(base_url=arena.url) as http:
        spanish = http.get("/", headers={"Accept-Language": "es"}).text
        english = http.get("/", headers={"Accept-Language": "en"}).text
    block = re.compile(r'<script type="application/json" id="arena-i18n">(.*?)</script>', re.S)
    messages = json.loads(block.search(spanish).group(1))
    assert messages["Waiting for the answers…"] == "Esperando las respuestas…"
    assert messages["%(n)s battle"]["one"] == "%(n)s batalla"
    assert json.loads(block.search(english).group(1)) == {}  # English: the msgids themselves


# --- (4) the trust rule holds in both languages --------------------------------------------


class _ForcedPairs:
    """The service's pair sampler, handing out the pair the test chose (one the real
    sampler could draw)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.next: tuple[str, str] | None = None

    def distribution(self, **kwargs: Any) -> Any:
        return self.real.distribution(**kwargs)

    def sample(self, rng: Any, **kwargs: Any) -> SampledPair:
        assert self.next is not None
        p = self.real.distribution(**kwargs).probability(*self.next)
        assert p > 0
        return SampledPair(self.next[0], self.next[1], p)


def _masked(response: httpx.Response, secrets: list[str]) -> str:
    lines = [str(response.status_code)]
    for key, value in response.headers.multi_items():
        if key.lower() in ("date", "server-timing"):
            continue
        if key.lower() == "set-cookie":
            value = re.sub(r"^([^=]+)=[^;]*", r"\1=<value>", value)
            value = re.sub(r"(?i)(max-age=\d+|expires=[^;]*)", "<time>", value)
        lines.append(f"{key}: {value}")
    body = response.text
    for secret in secrets:
        body = body.replace(secret, "#" * len(secret))
    # Timestamps of the history page, not the battle's business.
    body = re.sub(r"\d{4}-\d\d-\d\dT[\d:.+]+", "<time>", body)
    body = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<time>", body)
    return "\n".join([*lines, body])


def _diff(a: str, b: str) -> str:
    return "\n".join(difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=1))


def _before_the_vote(arena: Any, forced: _ForcedPairs, pair: tuple[str, str], lang: str) -> list:
    client = ArenaClient(arena.url, headers={"Accept-Language": lang})
    try:
        client.start()
        secrets = [v for v in client.http.cookies.values()]
        seen = [_masked(client.get("/"), secrets)]
        forced.next = pair
        battle_id = client.new_battle()
        secrets.append(battle_id)
        response, _ = client.send(battle_id, "Tell me about rivers")
        seen.append(_masked(response, secrets))
        for path in ("/", "/history", "/side-by-side"):
            seen.append(_masked(client.get(path), secrets))
    finally:
        client.close()
    return seen


def test_pages_before_the_vote_do_not_depend_on_the_models_in_either_language(
    arena_server, database_url
):
    names = ["quartz-alpha", "quartz-beta", "slate-gamma", "slate-delta"]
    arena = arena_server(
        [ScriptedProvider(n, reply=ANSWER) for n in names], database_url=database_url
    )
    service = arena.app.state.web.service
    forced = _ForcedPairs(service.sampler)
    service.sampler = forced
    for lang, marker in (("en", "Which answer is better?"), ("es", "¿Qué respuesta es mejor?")):
        first = _before_the_vote(arena, forced, ("quartz-alpha", "quartz-beta"), lang)
        second = _before_the_vote(arena, forced, ("slate-gamma", "slate-delta"), lang)
        for seen_first, seen_second in zip(first, second, strict=True):
            assert seen_first == seen_second, _diff(seen_first, seen_second)
        assert marker in first[0]
        for page in first[:1] + first[2:4]:  # the battle page and history, after the message
            assert not any(n in page for n in names)


def _notices(seen: str) -> list[tuple[str, dict]]:
    """The stream's frames but for the answers' own words (``delta``/``render``)."""
    events = parse_sse(seen[seen.index("event:") :].encode())
    return [(e.event, e.data) for e in events if e.event not in ("delta", "render")]


def test_a_failed_answer_reads_the_same_whichever_model_failed_and_however(
    arena_server, database_url
):
    """The notice codes (error kind, end notice) and texts of a failed side are the same for
    a timeout and a broken stream, from either pair, in both languages."""
    providers = [
        ScriptedProvider("quartz-alpha", reply=ANSWER, fail="timeout"),
        ScriptedProvider("quartz-beta", reply=ANSWER),
        ScriptedProvider("slate-gamma", reply=ANSWER, fail="during"),
        ScriptedProvider("slate-delta", reply=ANSWER),
    ]
    arena = arena_server(providers, database_url=database_url)
    service = arena.app.state.web.service
    forced = _ForcedPairs(service.sampler)
    service.sampler = forced
    for lang in ("en", "es"):
        first = _before_the_vote(arena, forced, ("quartz-alpha", "quartz-beta"), lang)
        second = _before_the_vote(arena, forced, ("slate-gamma", "slate-delta"), lang)
        assert _notices(first[1]) == _notices(second[1])
        for seen_first, seen_second in zip(first[2:], second[2:], strict=True):
            assert seen_first == seen_second, _diff(seen_first, seen_second)
        notices = _notices(first[1])
        errors = [data for event, data in notices if event == "error"]
        assert [(e["side"], e["kind"]) for e in errors] == [("a", "failed")]
        end = notices[-1][1]
        assert notices[-1][0] == "end" and end["can_vote"] is False
        assert end["notice"] == "answer_failed"
        assert end["message"].startswith("An answer failed")  # the API's English stays

"""The web UI's one translation layer, on Babel: the catalogs, the language of each request,
and the strings that templates and page scripts show.

Catalogs are ``locales/<lang>/LC_MESSAGES/messages.po`` (``scripts/i18n.py`` extracts and
updates them), compiled in memory when an app starts, so no binary ``.mo`` is kept in the
tree. Each request picks its language from, in order: ``?lang=xx`` (the language picker's
links; the answer also remembers it in a ``lang`` cookie), that cookie, then the browser's
``Accept-Language`` (q-values honoured) through Babel's negotiation; English otherwise.

Templates get ``_``/``gettext``/``ngettext`` (and ``{% trans %}``) as per-request context
variables from a Jinja2Templates context processor, never as environment globals, so two
requests in different languages can render at the same time. Page scripts get their strings
from a JSON block the page embeds (``js_messages``: msgid → translation, only the messages
the scripts use); their ``t()`` falls back to the English msgid. Server error messages of
the JSON API stay English: the pages word each error from its stable ``code`` (api_errors.js,
leaderboard.js, ``leaderboard_page.page_error``), the server's text only for a code they
do not know.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from babel.core import Locale, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
DEFAULT_LANGUAGE = "en"
LANG_PARAM = "lang"
LANG_COOKIE = "lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
# A browser sends a handful of languages; more than this is not a browser.
MAX_ACCEPTED = 20
MAX_TAG_CHARS = 35
PLURAL_TAGS = ("zero", "one", "two", "few", "many", "other")  # gettext's order in Babel


def N_(message: str) -> str:
    """Marks a string for extraction where it is defined; it is translated where shown."""
    return message


@dataclass(frozen=True)
class Language:
    """One loaded catalog: its code, its own name for itself, gettext, and the scripts'
    share of it."""

    code: str
    name: str
    translations: NullTranslations
    js_messages: Mapping[str, str | dict[str, str]] = field(default_factory=dict)


def _own_name(code: str) -> str:
    try:
        name = Locale.parse(code).get_display_name(code) or code
    except (ValueError, TypeError):
        return code
    return name[:1].upper() + name[1:]


def _forms_by_category(code: str, forms: list[str]) -> dict[str, str]:
    """Plural forms keyed by CLDR category (what the browser's Intl.PluralRules answers):
    Babel numbers a catalog's forms in this order of the language's categories."""
    try:
        tags = set(Locale.parse(code).plural_form.tags)
    except (ValueError, TypeError):
        tags = set()
    ordered = [tag for tag in PLURAL_TAGS if tag in tags]
    if len(ordered) != len(forms):
        return {"one": forms[0], "other": forms[-1]}
    return dict(zip(ordered, forms, strict=True))


def load_language(po_path: Path, code: str) -> Language:
    """A ``.po`` file compiled in memory (fuzzy entries left out, as msgfmt does)."""
    with po_path.open("rb") as f:
        catalog = read_po(f, locale=code)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    translations = Translations(buffer, domain="messages")
    js: dict[str, str | dict[str, str]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        if not any(str(path).endswith(".js") for path, _ in message.locations):
            continue
        if message.pluralizable:
            forms = [str(s) for s in message.string]
            if all(forms):
                js[message.id[0]] = _forms_by_category(code, forms)
        elif message.string:
            js[message.id] = str(message.string)
    return Language(code, _own_name(code), translations, MappingProxyType(js))


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an ``Accept-Language`` header, most wanted first (q-values, then
    the order given); ``*`` and q=0 entries are dropped."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:MAX_ACCEPTED]):
        tag, _, params = part.partition(";")
        tag = tag.strip()
        if not tag or tag == "*" or len(tag) > MAX_TAG_CHARS:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


class I18n:
    """The catalogs of one app (read once, never changed) and the per-request choice."""

    def __init__(self, locales_dir: Path = LOCALES_DIR) -> None:
        languages: dict[str, Language] = {}
        for po_path in sorted(Path(locales_dir).glob("*/LC_MESSAGES/messages.po")):
            code = po_path.parent.parent.name
            languages[code] = load_language(po_path, code)
        if DEFAULT_LANGUAGE not in languages:
            default = Language(DEFAULT_LANGUAGE, _own_name(DEFAULT_LANGUAGE), NullTranslations())
            languages[DEFAULT_LANGUAGE] = default
        self.languages: Mapping[str, Language] = MappingProxyType(languages)
        self._by_lower = MappingProxyType({code.lower(): code for code in languages})

    def match(self, preferred: Sequence[str]) -> str | None:
        """The first available language among ``preferred`` (``es-MX`` finds ``es``)."""
        found = negotiate_locale(list(preferred), list(self.languages), sep="-")
        if found is None:
            found = negotiate_locale(list(preferred), list(self.languages), sep="_")
        return self._by_lower.get(found.lower()) if found else None

    def explicit_choice(self, request: Request) -> str | None:
        """The language a ``?lang=`` parameter asks for, when there is one."""
        asked = request.query_params.get(LANG_PARAM, "")
        return self.match([asked]) if asked and len(asked) <= MAX_TAG_CHARS else None

    def choose(self, request: Request) -> str:
        """The language to answer ``request`` in."""
        explicit = self.explicit_choice(request)
        if explicit:
            return explicit
        cookie = request.cookies.get(LANG_COOKIE, "")
        if cookie and len(cookie) <= MAX_TAG_CHARS:
            chosen = self.match([cookie])
            if chosen:
                return chosen
        header = request.headers.get("accept-language", "")
        return self.match(parse_accept_language(header)) or DEFAULT_LANGUAGE

    def template_context(self, request: Request) -> dict[str, Any]:
        """What every template gets: the language, gettext, the picker and the scripts'
        strings (a Jinja2Templates context processor)."""
        language = self.languages[self.choose(request)]
        translations = language.translations
        return {
            "lang": language.code,
            "_": translations.gettext,
            "gettext": translations.gettext,
            "ngettext": translations.ngettext,
            "languages": [{"code": c, "name": lang.name} for c, lang in self.languages.items()],
            "js_messages": dict(language.js_messages),
        }

    def remember(self, request: Request, response: Response, path: str = "/") -> Response:
        """Keep a ``?lang=`` choice in a cookie; the page varies with the browser's language."""
        response.headers.append("Vary", "Accept-Language")
        explicit = self.explicit_choice(request)
        if explicit:
            response.set_cookie(
                LANG_COOKIE,
                explicit,
                max_age=LANG_COOKIE_MAX_AGE,
                path=path or "/",
                samesite="lax",
                httponly=True,
            )
        return response


def make_templates(directory: Path, i18n: I18n | None = None) -> Jinja2Templates:
    """Jinja2 templates with ``{% trans %}`` and the request's translations in context."""
    i18n = i18n or I18n()
    templates = Jinja2Templates(
        directory=str(directory), context_processors=[i18n.template_context]
    )
    templates.env.add_extension("jinja2.ext.i18n")
    templates.env.policies["ext.i18n.trimmed"] = True
    templates.env.globals["i18n"] = i18n  # read-only: the routes' remember() reaches it here
    return templates


def i18n_of(templates: Jinja2Templates) -> I18n:
    """The translation layer ``make_templates`` attached to ``templates``."""
    found = templates.env.globals.get("i18n")
    if not isinstance(found, I18n):
        raise TypeError("these templates were not made by arena.web.i18n.make_templates")
    return found

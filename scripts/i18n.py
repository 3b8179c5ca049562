"""The web UI's message catalogs (src/arena/web/locales/), kept with Babel's own extractors.

    python3 scripts/i18n.py extract   # write messages.pot from the sources
    python3 scripts/i18n.py update    # extract, then merge into every language's messages.po
    python3 scripts/i18n.py init LANG # start a catalog for a new language
    python3 scripts/i18n.py check     # exit 1 if a language misses or garbles a message

Sources: the templates (jinja2: ``_()``, ``{% trans %}``), the page scripts (javascript:
``t()``, ``tn()``) and the web package's Python (``N_()`` marks labels shown by templates).
A translator's note goes in a comment starting ``Translators:`` just above the string.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "src" / "arena" / "web"
LOCALES = WEB / "locales"
KEYWORDS: dict[str, Any] = {**DEFAULT_KEYWORDS, "t": None, "tn": (1, 2)}
COMMENT_TAGS = ("Translators:",)
JINJA = "jinja2.ext:babel_extract"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def sources() -> Iterator[tuple[Path, str, dict[str, str]]]:
    """(file, Babel extraction method, options) of everything that holds UI strings."""
    for path in sorted((WEB / "templates").glob("*.html")):
        yield path, JINJA, {"trimmed": "true", "extensions": "jinja2.ext.i18n"}
    for path in sorted((WEB / "static").glob("*.js")):  # the page scripts; not vendor/
        yield path, "javascript", {}
    for path in sorted(WEB.glob("*.py")):
        yield path, "python", {}


def extract_catalog() -> Catalog:
    """A template catalog of every message the sources use, with their locations."""
    catalog = Catalog(project="arena", charset="utf-8", fuzzy=False)
    for path, method, options in sources():
        where = path.relative_to(ROOT).as_posix()
        with path.open("rb") as f:
            for lineno, message, comments, context in extract(
                method,
                f,
                keywords=KEYWORDS,
                comment_tags=COMMENT_TAGS,
                options=options,
                strip_comment_tags=True,
            ):
                catalog.add(
                    message, None, [(where, lineno)], auto_comments=comments, context=context
                )
    return catalog


def po_path(lang: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / "messages.po"


def languages() -> list[str]:
    return sorted(p.parent.parent.name for p in LOCALES.glob("*/LC_MESSAGES/messages.po"))


def read_catalog(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=lang)


def write_catalog(path: Path, catalog: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=100, omit_header=False, ignore_obsolete=True)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def problems(template: Catalog, translated: Catalog, *, need_text: bool = True) -> list[str]:
    """What ``translated`` lacks against ``template``: missing, fuzzy or empty messages, and
    translations whose ``%(name)s`` placeholders differ from the original's."""
    found = []
    for message in template:
        if not message.id:
            continue
        key = message.id
        have = translated.get(key, context=message.context)
        singular = key[0] if isinstance(key, (tuple, list)) else key
        if have is None:
            found.append(f"missing: {singular!r}")
            continue
        if have.fuzzy:
            found.append(f"fuzzy: {singular!r}")
        ids = list(key) if isinstance(key, (tuple, list)) else [key]
        texts = list(have.string) if isinstance(have.string, (tuple, list)) else [have.string]
        if not need_text:
            continue
        if not all(texts):
            found.append(f"untranslated: {singular!r}")
            continue
        wanted = set().union(*(placeholders(i) for i in ids))
        for text in texts:
            if placeholders(text) != wanted and not (len(ids) > 1 and placeholders(text) < wanted):
                found.append(f"placeholders differ: {singular!r} -> {text!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["extract", "update", "init", "check"])
    parser.add_argument("lang", nargs="?")
    args = parser.parse_args(argv)
    template = extract_catalog()
    if args.command in ("extract", "update", "init"):
        write_catalog(LOCALES / "messages.pot", template)
    if args.command == "init":
        if not args.lang:
            parser.error("init needs a language code, e.g. init fr")
        if po_path(args.lang).exists():
            parser.error(f"{po_path(args.lang)} exists already; use update")
        fresh = Catalog(locale=args.lang, project="arena", charset="utf-8", fuzzy=False)
        fresh.update(template)
        write_catalog(po_path(args.lang), fresh)
    if args.command == "update":
        for lang in languages():
            catalog = read_catalog(po_path(lang), lang)
            catalog.update(template, no_fuzzy_matching=True)
            write_catalog(po_path(lang), catalog)
    if args.command == "check":
        failed = False
        for lang in languages():
            # English is the source language: its msgstrs may stay empty.
            found = problems(template, read_catalog(po_path(lang), lang), need_text=lang != "en")
            for line in found:
                print(f"{lang}: {line}", file=sys.stderr)
            failed = failed or bool(found)
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The dataset card (README.md) written beside a released conversation file.

It says what is in the file and what was left out, what every field means, how personal
data was scrubbed (and what the scrubber cannot find), and which versions of the layout,
the scrubber and each tagger made it, so a release can be reproduced and compared.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from arena import __version__
from arena.pipeline.scrub import TOKENS

if TYPE_CHECKING:
    from arena.pipeline.release import ReleaseReport

CARD_NAME = "README.md"
# The card's first line: a README.md that does not start with it is someone else's file
# (the project's own README, when --out names a file in the repository) and is never replaced.
CARD_MARKER = "<!-- arena conversation dataset card -->"
FIELDS = (
    ("question_id", "string", "The battle's id (random, opaque)."),
    ("model_a", "string", "Model on side A."),
    ("model_b", "string", "Model on side B."),
    ("winner", "string", "`model_a`, `model_b`, `tie` or `tie (bothbad)`."),
    ("judge", "string", "The voter, as a one-way hash (the same voter, the same value)."),
    ("conversation_a", "list of {role, content}", "Side A's conversation, scrubbed."),
    ("conversation_b", "list of {role, content}", "Side B's conversation, scrubbed."),
    ("turn", "int", "Number of user turns."),
    ("anony", "bool", "True when the models' names were hidden until the vote."),
    ("language", "string", "Language of the user's prompts (`unknown` when untagged)."),
    ("tstamp", "float", "Time of the vote (Unix seconds, UTC)."),
    ("moderation", "{flagged, categories, flagged_turns}", "The moderation hook's verdict."),
    ("tags", "object (JSON text in Parquet)", "The data pipeline's tags of the battle."),
)
EXCLUSIONS = {
    "opted_out": "the voter asked that their conversations stay out of released datasets",
    "flagged_voter": "the anomalous-voter screen flagged the voter (as for the leaderboard)",
    "failed_answer": "an answer shown to the voter failed or never came",
}
SCRUBBED = {
    "url_credentials": "user names and passwords in URLs",
    "email": "email addresses",
    "card": "payment card numbers (Luhn-checked)",
    "phone": "phone numbers (valid numbers; international form, or national form of the "
    "configured regions)",
    "ip": "IPv4 and IPv6 addresses (loopback, unspecified and reserved ones are kept)",
    "name": "person names known to Faker's name lists: Latin script (20 European locales), "
    "Cyrillic (Russian, Ukrainian, Bulgarian) and Greek as a capitalised first + last name or "
    "a known name after a cue such as 'my name is'; Hebrew, Arabic, Hindi (Devanagari) and Thai "
    "as a first + last name or a name after a cue in that language; Chinese, Japanese and "
    "Korean only as a surname + given name after a cue ('我叫', '私の名前は', '제 이름은') or "
    "before an honorific ('先生', 'さん', '씨'), Japanese also as a surname before an honorific "
    "or a full name written with a space",
}


def may_write_card(folder: Path) -> bool:
    """False when ``folder`` holds a README.md that is not an earlier dataset card."""
    path = folder / CARD_NAME
    if not path.exists():
        return True
    with path.open(encoding="utf-8", errors="replace") as f:
        return f.readline().strip() == CARD_MARKER


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def dataset_card(report: ReleaseReport, *, now: datetime | None = None) -> str:
    """The card's Markdown text."""
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    excluded = sum(report.excluded.values())
    lines = [
        CARD_MARKER,
        "# Arena conversations",
        "",
        f"Voted battles of an Arena deployment: {report.rows:,} battles "
        f"({report.anonymous:,} anonymous, {report.rows - report.anonymous:,} named "
        f"side by side) between {_count(len(report.models), 'model')}, in "
        f"{_count(len(report.languages), 'language')}, written {when} to `{report.path.name}` "
        f"({report.fmt}). Personal data was scrubbed from every message.",
        "",
        "Load it with `datasets.load_dataset("
        f"'{'parquet' if report.fmt == 'parquet' else 'json'}', "
        f"data_files='{report.path.name}', split='train')`.",
        "",
        "## Licence",
        "",
        "LICENCE PLACEHOLDER: the operators of this arena must choose the licence of the "
        "conversations before publishing them, and check the terms of each model's provider "
        "for its outputs.",
        "",
        "## Counts",
        "",
        *_table(("models", "battles"), report.models.most_common()),
        "",
        *_table(("language", "battles"), report.languages.most_common()),
        "",
        f"Left out: {excluded:,} voted battles.",
        "",
        *_table(
            ("reason", "battles", "why"),
            [(k, report.excluded.get(k, 0), why) for k, why in EXCLUSIONS.items()],
        ),
        "",
        "## Fields",
        "",
        *_table(("field", "type", "meaning"), list(FIELDS)),
        "",
        "## Personal data",
        "",
        f"Scrubber version {report.scrubber_version}. Each finding is replaced by a token:",
        "",
        *_table(
            ("token", "what", "replaced"),
            [(f"`{TOKENS[k]}`", what, report.scrubbed.get(k, 0)) for k, what in SCRUBBED.items()],
        ),
        "",
        "A scrubber finds patterns, not meaning: names in other scripts or languages (Persian, "
        "Bengali, Tamil, Vietnamese...), names it does not know, inflected names (Russian "
        "'Ивану Петрову'), CJK names without a cue, addresses, national phone numbers of other "
        "regions and personal facts told in words are not found. Review before publishing.",
        "",
        "## Versions",
        "",
        f"- arena {__version__}, release layout {report.layout_version}",
        f"- scrubber {report.scrubber_version} (phonenumbers {_version('phonenumbers')}, "
        f"Faker {_version('faker')} name lists)",
        "",
        *(
            _table(
                ("tagger", "version", "tags released"),
                [(t, v, n) for (t, v), n in sorted(report.taggers.items())],
            )
            if report.taggers
            else ["No pipeline tags: run `arena pipeline run` before the export to add them."]
        ),
        "",
    ]
    return "\n".join(lines)

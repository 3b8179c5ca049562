"""Person names in Chinese, Japanese and Korean for the personal-data scrubber, from the
names Faker ships for zh_CN, zh_TW, ja_JP and ko_KR.

These are written without spaces inside a sentence, and a single surname character is an
ordinary character ("高" + "强" is "high strength", "王" starts "王强调"), so only a known
surname directly followed by a known given name counts, and only after a cue ("我叫",
"私の名前は", "제 이름은") or before an honorific ("先生", "さん", "씨"), where the name must end
a word. Japanese also: a full name written with a space ("佐藤 花子"), and a surname of two or
more characters before an honorific ("田中さん").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from arena.pipeline.scrub_names import faker_names

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005"
KANA = "\u3040-\u30ff"
HANGUL = "\uac00-\ud7a3"


def alternation(phrases: Iterable[str]) -> str:
    """A regular expression matching any of ``phrases``, longest first."""
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


@dataclass(frozen=True)
class CJKLanguage:
    """Names of one language written without spaces: surname directly before given name."""

    name: str
    locales: tuple[str, ...]
    before: tuple[str, ...]  # cues right before a full name
    after: tuple[str, ...]  # honorifics right after a name
    letters: str  # characters that may go on the same word (no boundary after a name)
    space_between: bool = False  # "佐藤 花子" is a full name on its own
    surname_alone: bool = False  # "田中さん" is a name


CJK_LANGUAGES = (
    CJKLanguage(
        "Chinese", ("zh_CN", "zh_TW"),
        ("我叫", "我的名字是", "我的名字叫", "我名叫", "名叫", "叫做", "我是", "本人", "姓名：",
         "姓名:"),
        ("先生", "女士", "小姐", "老师", "老師", "同学", "同學", "医生", "醫生", "教授"),
        HAN,
    ),
    CJKLanguage(
        "Japanese", ("ja_JP",),
        ("私の名前は", "わたしの名前は", "僕の名前は", "名前は", "私は", "僕は", "氏名：", "氏名:"),
        ("さん", "様", "さま", "先生", "氏", "くん", "君", "ちゃん", "と申します", "と言います"),
        HAN, space_between=True, surname_alone=True,
    ),
    CJKLanguage(
        "Korean", ("ko_KR",),
        ("제 이름은 ", "내 이름은 ", "이름은 ", "이름: ", "저는 ", "나는 "),
        ("씨", "님", "선생님", "교수님"),
        HANGUL,
    ),
)  # fmt: skip

# What may follow a Korean name after a cue: copula and particles written on the same word.
_KOREAN_ENDINGS = (
    "입니다", "이에요", "예요", "이고", "이라고", "라고", "이며", "은", "는", "이", "가", "을",
    "를", "의", "에게", "와", "과", "도", "씨", "님",
)  # fmt: skip


# A Japanese full name written with a space: a run of kanji after no kanji or kana, a space.
_SPACED_PAIR = re.compile(f"(?<![{HAN}{KANA}])[{HAN}]{{1,3}}[ \u3000](?=[{HAN}{KANA}])")


@dataclass(frozen=True)
class CJKLists:
    language: CJKLanguage
    surnames: frozenset[str]
    given: frozenset[str]
    surname_lengths: tuple[int, ...]
    given_lengths: tuple[int, ...]
    before: re.Pattern[str]
    after: re.Pattern[str]
    present: re.Pattern[str]  # a letter of the language


def cjk_lists(language: CJKLanguage) -> CJKLists:
    surnames = set().union(*(faker_names(locale, "last") for locale in language.locales))
    given = set().union(*(faker_names(locale, "first") for locale in language.locales))
    return CJKLists(
        language,
        frozenset(surnames),
        frozenset(given),
        tuple(sorted({len(n) for n in surnames}, reverse=True)),
        tuple(sorted({len(n) for n in given}, reverse=True)),
        re.compile(f"(?:{alternation(language.before)})\\s?"),
        re.compile(alternation(language.after)),
        re.compile(f"[{language.letters}]"),
    )


def _name_at(text: str, pos: int, lists: CJKLists) -> Iterator[int]:
    """Ends of surname + given name pairs that start at ``pos``, longest first."""
    for s in lists.surname_lengths:
        if text[pos : pos + s] not in lists.surnames:
            continue
        gap = pos + s
        if lists.language.space_between and text[gap : gap + 1] in (" ", "\u3000"):
            gap += 1
        for g in lists.given_lengths:
            if text[gap : gap + g] in lists.given:
                yield gap + g


def _ends_word(text: str, end: int, lists: CJKLists) -> bool:
    if end >= len(text) or not re.match(f"[{lists.language.letters}]", text[end]):
        return True
    return lists.language.name == "Korean" and text.startswith(_KOREAN_ENDINGS, end)


def cjk_names(text: str, lists: CJKLists) -> Iterator[tuple[int, int]]:
    language = lists.language
    for cue in lists.before.finditer(text):
        for end in _name_at(text, cue.end(), lists):
            if _ends_word(text, end, lists) or lists.after.match(text, end):
                yield cue.end(), end
                break
    for honorific in lists.after.finditer(text):
        yield from _before_honorific(text, honorific.start(), lists)
    if language.space_between:
        for pair in _SPACED_PAIR.finditer(text):
            for end in _name_at(text, pair.start(), lists):
                if end > pair.end() and _ends_word(text, end, lists):
                    yield pair.start(), end
                    break


def _before_honorific(text: str, end: int, lists: CJKLists) -> Iterator[tuple[int, int]]:
    end = end - 1 if text[end - 1 : end] == " " else end  # "김민준 씨"
    widest = max(lists.surname_lengths) + max(lists.given_lengths) + 1
    for start in range(max(0, end - widest), end):
        korean_inside_word = lists.language.name == "Korean" and _hangul_before(text, start)
        if not korean_inside_word and end in _name_at(text, start, lists):
            yield start, end
            return
    if lists.language.surname_alone:
        for s in lists.surname_lengths:
            start = end - s
            after_kanji = start > 0 and re.match(f"[{HAN}]", text[start - 1]) is not None
            if s >= 2 and start >= 0 and not after_kanji and text[start:end] in lists.surnames:
                yield start, end
                return


def _hangul_before(text: str, start: int) -> bool:
    return start > 0 and re.match(f"[{HANGUL}]", text[start - 1]) is not None

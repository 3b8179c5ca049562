"""Person names in scripts other than Latin: names Faker lists for each locale, put in typical
sentences of that language, are replaced by <NAME>; ordinary text of that language (Faker's
lorem words, which are real words of the language, and CLDR's names of countries, languages,
months and currencies through Babel where Faker has no lorem) keeps its words.

The false-positive bounds are set from measured rates (see the report in docs/pipeline.md):
0 of 2,000 lorem texts per locale and 0 of 500 CLDR texts per language were touched when
written; the asserted bounds leave room for Faker's word lists changing between releases.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
from babel import Locale
from faker import Faker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.pipeline.dataset_card import SCRUBBED
from arena.pipeline.scrub import Scrubber
from arena.pipeline.scrub_names import NOT_NAMES, faker_names
from arena.pipeline.scrub_names_scripts import find_script_names, script_name_lists
from support.shared_data import SHARED_DATA

SCRUBBER = Scrubber()


def _names(locale: str, kind: str) -> list[str]:
    # Faker's lists hold a few oddities that are no name a text would show: Bulgarian entries
    # in lower case or glued together ("ЕвроповКирилов"), an Arabic one with a variant in
    # brackets; and words the scrubber knows are nearly always nouns ("Мир").
    return sorted(
        n
        for n in faker_names(locale, kind)
        if "(" not in n and all(map(_one_capital, n.split())) and n not in NOT_NAMES
    )


def _one_capital(word: str) -> bool:
    """Not in lower case, no capital after the first letter (caseless scripts pass)."""
    return not word[0].islower() and not any(c.isupper() for c in word[1:])


# locale: (a sentence with the full name in it, the order the language writes it in)
SENTENCES = {
    "ru_RU": ("Вчера я видел {name} в парке.", "{first} {last}"),
    "uk_UA": ("Вчора я бачив {name} у парку.", "{first} {last}"),
    "bg_BG": ("Вчера видях {name} в парка.", "{first} {last}"),
    "el_GR": ("Χθες είδα τον {name} στο πάρκο.", "{first} {last}"),
    "he_IL": ("אתמול פגשתי את {name} בפארק.", "{first} {last}"),
    "ar_AA": ("التقيت {name} في الحديقة أمس.", "{first} {last}"),
    "ar_SA": ("التقيت {name} في الحديقة أمس.", "{first} {last}"),
    "hi_IN": ("कल मैं {name} से मिला।", "{first} {last}"),
    "th_TH": ("เมื่อวาน {name} มาที่บ้าน", "{first} {last}"),
    "zh_CN": ("你好，我叫{name}，很高兴认识你。", "{last}{first}"),
    "zh_TW": ("你好，我叫{name}，很高興認識你。", "{last}{first}"),
    "ja_JP": ("はじめまして、私の名前は{name}です。", "{last}{first}"),
    "ko_KR": ("안녕하세요, 제 이름은 {name}입니다.", "{last}{first}"),
}


@pytest.mark.parametrize("locale", sorted(SENTENCES))
def test_full_names_in_typical_sentences_are_removed(locale: str) -> None:
    sentence, order = SENTENCES[locale]
    first, last = _names(locale, "first"), _names(locale, "last")
    rng = random.Random(locale)
    missed = []
    for _ in range(200):
        name = order.format(first=rng.choice(first), last=rng.choice(last))
        text = sentence.format(name=name)
        result = SCRUBBER.scrub(text)
        if result.text != sentence.format(name="<NAME>") or result.counts != {"name": 1}:
            missed.append((text, result.text))
    assert not missed, missed[:5]


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        # Cyrillic: patronymic, last name first, cues.
        ("Встреча: Иван Петрович Сидоров, 10:00.", "Встреча: <NAME>, 10:00."),
        ("Сидоров Иван Петрович, 1980 г.р.", "<NAME>, 1980 г.р."),
        ("Меня зовут Анна, я из Москвы.", "Меня зовут <NAME>, я из Москвы."),
        ("Шановний Олександр, дякую за лист.", "Шановний <NAME>, дякую за лист."),
        ("Казвам се Георги Иванов.", "Казвам се <NAME>."),
        ("Με λένε Άννα.", "Με λένε <NAME>."),
        # Caseless scripts: a known name after a cue in that language.
        ("שמי דנה, נעים מאוד.", "שמי <NAME>, נעים מאוד."),
        ("اسمي أحمد وأنا من القاهرة.", "اسمي <NAME> وأنا من القاهرة."),
        ("اسمي احمد.", "اسمي <NAME>."),  # written without the hamza
        ("मेरा नाम अभय है।", "मेरा नाम <NAME> है।"),
        ("นายกระสุน กุมารบุญ มาแล้ว", "นาย<NAME> มาแล้ว"),
        # CJK: after a cue, before an honorific, a Japanese name written with a space.
        ("我是李强，你好。", "我是<NAME>，你好。"),
        ("请联系王伟先生。", "请联系<NAME>先生。"),
        ("山田太郎さんに会いました。", "<NAME>さんに会いました。"),
        ("田中さん、こんにちは。", "<NAME>さん、こんにちは。"),
        ("担当：佐藤 花子", "担当：<NAME>"),
        ("김민준 씨, 안녕하세요.", "<NAME> 씨, 안녕하세요."),
    ],
)
def test_cues_and_honorifics(text: str, scrubbed: str) -> None:
    assert SCRUBBER.scrub(text).text == scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "Роман Толстого читают все. Вера в лучшее.",  # first names that are ordinary words
        "Надежда умирает последней.",
        "我是高强度训练的爱好者。",  # 高 + 强 are a surname and a given name
        "王强调了这一点。",  # 王 + 强 inside 强调 (to stress)
        "中国的马力很大。",
        "私は学生です。林の中を歩く。",
        "저는 김치를 좋아해요. 이경 씨름 대회",
        "نور الشمس جميل وكريم.",  # names that are also words, with no last name after them
        "שלום עולם, מה נשמע?",
    ],
)
def test_ordinary_sentences_keep_their_words(text: str) -> None:
    assert SCRUBBER.scrub(text).text == text


@pytest.mark.parametrize(
    "text",
    [
        "Привет, Мир!",  # "hello, world": Мир is a ru_RU first name in Faker
        "Привет Мир",
        'print("Привет, мир")',
        "Hello Мир",
        'console.log("Привет, Мир!");',
        "Здравей, Луна!",
        "Γεια σου Κόσμε!",
    ],
)
def test_hello_world_in_cyrillic_and_greek_is_no_name(text: str) -> None:
    assert SCRUBBER.scrub(text).text == text


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        ("Привет, Вера!", "Привет, <NAME>!"),  # also a word ("faith"), but a common name
        ("Меня зовут Надежда.", "Меня зовут <NAME>."),
        ("Hello Лев, how are you?", "Hello <NAME>, how are you?"),
        ("Привет, Мирон!", "Привет, <NAME>!"),
        ("Γεια σου Ειρήνη!", "Γεια σου <NAME>!"),
    ],
)
def test_names_that_are_also_words_are_still_found_after_a_cue(text: str, scrubbed: str) -> None:
    assert SCRUBBER.scrub(text).text == scrubbed


def _lorem(locale: str, count: int) -> list[str]:
    fake = Faker(locale)
    fake.seed_instance(11)
    return [fake.text(200).replace("\n", " ") for _ in range(count)]


def _touched(texts: list[str]) -> int:
    return sum(1 for text in texts if "<NAME>" in SCRUBBER.scrub(text).text)


@pytest.mark.parametrize(
    "locale", ["ru_RU", "uk_UA", "el_GR", "he_IL", "ar_AA", "th_TH", "zh_CN", "zh_TW", "ja_JP"]
)
def test_false_positives_on_lorem_text_stay_low(locale: str) -> None:
    texts = _lorem(locale, 1000)
    # Measured: 0 of 2,000 texts of 200 characters for each of these locales.
    assert _touched(texts) <= 5  # 0.5 %


@pytest.mark.parametrize("language", ["bg", "hi", "ko", "ru", "el", "he", "ar", "th", "zh", "ja"])
def test_false_positives_on_cldr_words_stay_low(language: str) -> None:
    """Faker has no lorem for Bulgarian, Hindi or Korean: CLDR's country, language, month, day
    and currency names, shuffled into runs of twelve, are ordinary words of each language."""
    locale = Locale.parse(language)
    words = [
        *locale.territories.values(),
        *locale.languages.values(),
        *locale.months["format"]["wide"].values(),
        *locale.days["format"]["wide"].values(),
        *locale.currencies.values(),
    ]
    rng = random.Random(language)
    texts = [" ".join(rng.sample(words, 12)) for _ in range(300)]
    assert _touched(texts) <= 3  # 1 %; measured 0 of 500


@pytest.mark.parametrize(("locale", "cues"), [("zh_CN", ("我是", "我叫")), ("ja_JP", ("私は",))])
def test_a_cue_before_ordinary_words_is_not_enough(locale: str, cues: tuple[str, ...]) -> None:
    """ "我是" ("I am") and "私は" ("I") start ordinary sentences too: only a listed surname and
    given name ending a word after them count."""
    texts = [cue + text for cue in cues for text in _lorem(locale, 500)]
    assert _touched(texts) <= len(texts) // 200  # measured 0 of 3,500 (zh) and 0 of 2,100 (ja)


def _prompts() -> list[str]:
    prompts = []
    for line in (SHARED_DATA / "arena_hard_v0.1" / "question.jsonl").read_text().splitlines():
        prompts.append(json.loads(line)["prompt"])
    for line in (SHARED_DATA / "mt_bench" / "question.jsonl").read_text().splitlines():
        prompts.extend(json.loads(line)["turns"])
    return prompts


def test_real_prompts_find_no_names_in_the_new_scripts() -> None:
    """The 500 Arena-Hard and 160 MT-Bench prompts (English, one with Greek letters, one with
    Chinese) hold no name in the scripts of ``scrub_names_scripts``."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    lists = script_name_lists()
    prompts = _prompts()
    assert len(prompts) == 660
    assert [p for p in prompts if list(find_script_names(p, lists))] == []


def test_the_dataset_card_names_the_scripts_covered() -> None:
    for script in ("Latin", "Cyrillic", "Greek", "Hebrew", "Arabic", "Devanagari", "Thai"):
        assert script in SCRUBBED["name"]
    for language in ("Chinese", "Japanese", "Korean"):
        assert language in SCRUBBED["name"]


def test_names_off_leaves_every_script_alone() -> None:
    text = "Меня зовут Анна. 我叫王伟。 اسمي أحمد."
    assert Scrubber(names=False).scrub(text).text == text


def test_a_cyrillic_name_found_once_is_removed_everywhere_in_the_conversation() -> None:
    results = Scrubber().scrub_conversation(["Пишу от имени Анна Иванова.", "Хорошо, Анна."])
    assert [r.text for r in results] == ["Пишу от имени <NAME>.", "Хорошо, <NAME>."]


# Pieces of every script and shape, glued at random: spans stay inside the text, in order.
_PIECES = list(
    "我叫王伟先生さん田中佐藤花子 \u3000김민준씨님제 이름은שמי דנה כהן-'اسمي أحمد الخطيب"
    "मेरा नाम राहुल शर्माนายกระสุน กุมารบุญ.Иван Петрович Сидоров,"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_any_mix_of_scripts_gives_ordered_spans_inside_the_text(text: str) -> None:
    spans = SCRUBBER.spans(text)
    assert all(0 <= start < end <= len(text) for start, end, _ in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    SCRUBBER.scrub_conversation([text, text[::-1]])

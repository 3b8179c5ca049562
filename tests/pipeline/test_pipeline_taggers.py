"""Deterministic taggers: language across scripts (with a measured accuracy on sentences
written for this test), the coding heuristic on positives and near-miss negatives, the
normalised prompt hash, turn and length tags, and dedup's frequency rule."""

from __future__ import annotations

import pytest

from arena.pipeline.dedup import dedup_tags
from arena.pipeline.taggers import DETERMINISTIC_TAGGERS
from arena.pipeline.taggers.coding import is_coding
from arena.pipeline.taggers.language import detect_language
from arena.pipeline.taggers.prompt_hash import normalise, prompt_hash
from arena.pipeline.taggers.prompt_shape import LONG_QUERY, MULTI_TURN
from arena.pipeline.tags import PromptRecord

# Everyday chat prompts, one or two per language, written for this test.
LANGUAGE_SAMPLES = [
    ("Can you help me plan a three day trip to Lisbon on a small budget?", "English"),
    ("What should I cook tonight with rice, eggs and some spinach?", "English"),
    ("请帮我写一封邮件，向老板申请下周五请假。", "Chinese"),
    ("为什么天空是蓝色的？请用简单的话解释。", "Chinese"),
    ("Wie kann ich meine Bewerbung für eine Stelle als Ingenieur verbessern?", "German"),
    ("Kannst du mir erklären, wie die Photosynthese funktioniert?", "German"),
    ("¿Cuáles son los mejores lugares para visitar en México durante el invierno?", "Spanish"),
    ("Escribe un poema corto sobre el mar y la nostalgia.", "Spanish"),
    ("Quelle est la différence entre un crédit immobilier à taux fixe et variable ?", "French"),
    ("Peux-tu me donner une recette de gâteau au chocolat sans beurre ?", "French"),
    ("Как лучше всего выучить английский язык за полгода?", "Russian"),
    ("Напиши короткий рассказ о коте, который умел говорить.", "Russian"),
    ("日本の四季について短い説明を書いてください。", "Japanese"),
    ("東京でおすすめのラーメン屋を教えてください。", "Japanese"),
    ("한국 역사에서 가장 중요한 사건은 무엇인가요?", "Korean"),
    ("다이어트에 좋은 아침 식사 메뉴를 추천해 주세요.", "Korean"),
    ("Qual é a melhor maneira de economizar dinheiro todos os meses?", "Portuguese"),
    ("Você pode resumir a história do Brasil em poucas frases?", "Portuguese"),
    ("Puoi consigliarmi un libro da leggere durante le vacanze estive?", "Italian"),
    ("Come si prepara una vera carbonara romana?", "Italian"),
    ("ما هي أفضل طريقة لتعلم البرمجة للمبتدئين؟", "Arabic"),
    ("اكتب لي قصة قصيرة عن الصداقة.", "Arabic"),
    ("Bana İstanbul'da gezilecek yerlerin bir listesini verir misin?", "Turkish"),
    ("Làm thế nào để cải thiện kỹ năng viết tiếng Anh của tôi?", "Vietnamese"),
    ("Hoe kan ik mijn tuin het beste voorbereiden op de winter?", "Dutch"),
    ("Jak mogę poprawić swoją kondycję w ciągu miesiąca?", "Polish"),
    ("Μπορείς να μου εξηγήσεις τη θεωρία της σχετικότητας απλά;", "Greek"),
    ("मुझे दिल्ली में घूमने की अच्छी जगहें बताइए।", "Hindi"),
    ("Kan du ge mig tips för att sova bättre på natten?", "Swedish"),
    ("Як приготувати справжній український борщ?", "Ukrainian"),
]
# Measured with py3langid 0.4.0: 30 of 30. The bound leaves room for a model update.
MIN_LANGUAGE_ACCURACY = 0.9


def test_language_accuracy_on_many_scripts() -> None:
    results = [(detect_language(text), expected) for text, expected in LANGUAGE_SAMPLES]
    wrong = [(got, want) for got, want in results if got != want]
    accuracy = 1 - len(wrong) / len(results)
    assert accuracy >= MIN_LANGUAGE_ACCURACY, wrong


@pytest.mark.parametrize("text", ["", "ok", "12345 + 678", "🙂🙂🙂", "```\nx = 1\n```"])
def test_language_unknown_without_enough_text(text: str) -> None:
    assert detect_language(text) == "unknown"


def test_language_ignores_code_blocks() -> None:
    prompt = "这段代码为什么报错？请帮我看看。\n```python\nfor item in items:\n    print(item)\n```"
    assert detect_language(prompt) == "Chinese"


CODING_POSITIVES = [
    "Write a function that returns the n-th prime number.",
    "Implement a binary search over a sorted array.",
    "SOLVE THIS IN C++: read n integers and print their sum.",
    "```python\nprint('hi')\n```\nwhy does this print nothing?",
    "Traceback (most recent call last):\n  File \"x.py\", line 3\nNameError: name 'y' is "
    "not defined",
    "Why does this fail?\n#include <stdio.h>\nint main() { return 0; }",
    "How do I center a div with CSS?",
    "Explain monads in Haskell with an example.",
    "What does git rebase --onto do and when should I use it with the API client repo?",
    "Fix the bug in my code: it loops forever when the list is empty.",
]
CODING_NEGATIVES = [
    "I visited Java and Bali last summer, where should I go next?",
    "She wore a ruby ring to the wedding; is that too much?",
    "Write a review of Taylor Swift's newest album.",
    "Let us go to the park and then have lunch.",
    "What is the derivative of the function f(x) = x^2 + 3x?",
    "Plan a program for a one-day conference on climate.",
    "Write a haiku about autumn rain.",
    "```\nRoses are red\nviolets are blue\n```\nContinue this poem.",
    "Create a video script about business etiquette in Japan.",
    "My server at the restaurant was rude; how do I complain politely?",
]


@pytest.mark.parametrize("text", CODING_POSITIVES)
def test_coding_positives(text: str) -> None:
    assert is_coding(text)


@pytest.mark.parametrize("text", CODING_NEGATIVES)
def test_coding_near_miss_negatives(text: str) -> None:
    assert not is_coding(text)


def test_prompt_hash_folds_case_space_and_unicode_forms() -> None:
    assert normalise("  Hello\tWORLD \n") == "hello world"
    assert prompt_hash(["What is  AI?"]) == prompt_hash(["what is ai?\n"])
    assert prompt_hash(["ﬁne"]) == prompt_hash(["fine"])  # NFKC ligature
    assert prompt_hash(["a b"]) != prompt_hash(["a", "b"])  # turn boundaries count
    assert prompt_hash(["first", "second"]) != prompt_hash(["second", "first"])
    assert len(prompt_hash(["x"])) == 64


def test_turn_and_length_tags() -> None:
    one = PromptRecord("b1", ("hello",))
    two = PromptRecord("b2", ("hello", "and more"))
    long = PromptRecord("b3", ("word " * 600,))
    assert MULTI_TURN.run(one)[0].value is False
    assert MULTI_TURN.run(two)[0].value is True
    assert LONG_QUERY.run(one)[0].value is False
    assert LONG_QUERY.run(long)[0].value is True


def test_every_tagger_is_versioned_and_returns_its_tags() -> None:
    record = PromptRecord("b1", ("Write a Python function to add two numbers.",))
    names = set()
    for tagger in DETERMINISTIC_TAGGERS:
        tags = tagger.run(record)
        assert tagger.version and [t.name for t in tags] == list(tagger.tag_names)
        names.update(tagger.tag_names)
    assert names == {"language", "is_code", "multi_turn", "long_query", "prompt_hash"}


def test_dedup_keeps_a_percentile_of_a_flooding_prompt() -> None:
    pairs = [(f"u{i:04d}", f"unique-{i}") for i in range(2000)]
    pairs += [(f"r{i:04d}", f"twice-{i // 2}") for i in range(20)]
    pairs += [(f"f{i:04d}", "flood") for i in range(300)]
    tags = dedup_tags(pairs)
    flood = [tags[f"f{i:04d}"] for i in range(300)]
    assert all(t["high_freq"] for t in flood)
    kept = sum(t["sampled"] for t in flood)
    # The 99.9th percentile of the 2,011 prompts' counts (2,000 ones, 10 twos, one 300)
    # falls among the twos: the flooding prompt keeps 2 battles, the twice-asked ones stay.
    assert kept == 2
    assert all(tags[f"u{i:04d}"] == {"high_freq": False, "sampled": True} for i in range(2000))
    assert not any(tags[f"r{i:04d}"]["high_freq"] for i in range(20))
    # Deterministic: the same battles keep the same verdicts, in any order.
    assert dedup_tags(list(reversed(pairs))) == tags


def test_dedup_never_flags_prompts_asked_once() -> None:
    tags = dedup_tags([("a", "x"), ("b", "y"), ("c", "z")])
    assert all(t == {"high_freq": False, "sampled": True} for t in tags.values())
    assert dedup_tags([]) == {}

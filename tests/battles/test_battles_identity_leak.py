"""Identity-leak detection on realistic answers: what must fire and what must not."""

from __future__ import annotations

import pytest

from arena.battles.identity_leak import IdentityLeakDetector
from arena.providers.registry import ModelSpec

SPECS = [
    ModelSpec(name="claude-3-5-sonnet", provider="demo", organization="Anthropic"),
    ModelSpec(name="gpt-4o-mini", provider="demo", organization="OpenAI", aliases=["ChatGPT"]),
    ModelSpec(name="gpt-4", provider="demo", organization="OpenAI"),
    ModelSpec(name="llama-3-70b-instruct", provider="demo", organization="Meta"),
    ModelSpec(name="mistral-large-2407", provider="demo", organization="Mistral AI"),
    ModelSpec(name="qwen2.5-72b-instruct", provider="demo", organization="Alibaba Cloud"),
    ModelSpec(name="command-r-plus", provider="demo", organization="Cohere"),
    ModelSpec(name="phi-3-mini", provider="demo", organization="Microsoft"),
    ModelSpec(name="gemini-1.5-pro", provider="demo", organization="Google DeepMind"),
]


@pytest.fixture(scope="module")
def detector() -> IdentityLeakDetector:
    return IdentityLeakDetector.from_specs(SPECS)


TRUE_POSITIVES = [
    (
        "claude-3-5-sonnet",
        "I'm Claude, an AI assistant made by Anthropic. How can I help?",
        "claude",
    ),
    (
        "claude-3-5-sonnet",
        "As an assistant created by ANTHROPIC, I can't browse the web.",
        "Anthropic",
    ),
    ("claude-3-5-sonnet", "Sure! (Claude 3.5 Sonnet here.) Let's begin.", "claude-3-5-sonnet"),
    ("gpt-4", "As GPT4, my knowledge has a cutoff date.", "gpt-4"),
    ("gpt-4", "I am based on the GPT-4 architecture developed by OpenAI.", "gpt-4"),
    ("gpt-4", "I'm gpt 4, a large language model.", "gpt-4"),
    ("gpt-4o-mini", "I'm ChatGPT, a language model trained by OpenAI.", "ChatGPT"),
    ("gpt-4o-mini", "Model: gpt_4o_mini. Ready.", "gpt-4o-mini"),
    ("llama-3-70b-instruct", "I'm LLaMA, a large language model trained by Meta AI.", "llama"),
    ("llama-3-70b-instruct", "I was developed by Meta.", "Meta"),
    ("llama-3-70b-instruct", "Llama3 at your service!", "llama"),
    ("mistral-large-2407", "Je suis Mistral, un assistant créé par Mistral AI.", "mistral"),
    ("qwen2.5-72b-instruct", "我是通义千问 (Qwen), created by Alibaba Cloud.", "qwen"),
    ("qwen2.5-72b-instruct", "I am Qwen2.5, developed by Alibaba.", "qwen"),
    ("command-r-plus", "I am Command R+, built by Cohere.", "Cohere"),
    ("gemini-1.5-pro", "I'm Gemini, a model from Google DeepMind.", "gemini"),
    ("phi-3-mini", "I am Phi-3-mini, a small model from Microsoft.", "phi-3-mini"),
]


@pytest.mark.parametrize(("model", "text", "term"), TRUE_POSITIVES)
def test_answers_that_name_their_model_are_caught(detector, model, text, term):
    match = detector.first(text, [model])
    assert match is not None, text
    assert match.model == model
    assert match.term.lower() == term.lower()
    assert text[match.start : match.end] == match.matched_text


TRUE_NEGATIVES = [
    # Common words that collide with model or company names, and near-misses.
    "A meta-analysis of 40 studies found no effect; see the metadata table.",
    "Alpacas and llamas are domesticated camelids from South America.",
    "Run the command in a terminal and pass the --plus flag.",
    "The golden ratio is often written as phi, about 1.618.",
    "This sonnet follows the Petrarchan rhyme scheme; a haiku has three lines.",
    "Cohesion and coherence matter in an essay.",
    "We measured 4 GPUs over 70 billion parameters in a large instruct-style setup.",
    "Quantum computers use qubits; the question is still open.",
    "I'm an AI assistant. I don't have a name, but I'm happy to help!",
    "Microscopic organisms were observed; the openair market was busy.",
]


@pytest.mark.parametrize("text", TRUE_NEGATIVES)
def test_ordinary_text_is_not_flagged(detector, text):
    assert detector.find(text) == [], text


def test_organization_and_family_words_need_word_edges(detector):
    assert detector.first("The company's Alibaba Cloud unit", ["qwen2.5-72b-instruct"])
    assert detector.first("I am a metamodel", ["llama-3-70b-instruct"]) is None
    assert detector.first("unclaudelike", ["claude-3-5-sonnet"]) is None
    # A version glued to a family name still counts; a longer word does not.
    assert detector.first("claude3", ["claude-3-5-sonnet"]) is not None
    assert detector.first("claudette", ["claude-3-5-sonnet"]) is None


def test_scope_of_the_check(detector):
    battle = ["llama-3-70b-instruct", "claude-3-5-sonnet"]
    text = "Hi! I'm Claude."
    own = detector.check_answer(
        text, side_model="llama-3-70b-instruct", battle_models=battle, scope="own"
    )
    assert own is None
    both = detector.check_answer(text, side_model="llama-3-70b-instruct", battle_models=battle)
    assert both is not None and both.model == "claude-3-5-sonnet"
    claim = "I'm ChatGPT."
    assert detector.check_answer(claim, side_model=battle[0], battle_models=battle) is None
    anyone = detector.check_answer(claim, side_model=battle[0], battle_models=battle, scope="all")
    assert anyone is not None and anyone.model == "gpt-4o-mini"


def test_terms_are_generated_with_stoplist_and_minimum_length(detector):
    terms = {(t.text, t.kind) for t in detector.terms_for("claude-3-5-sonnet")}
    assert ("claude", "family") in terms and ("Anthropic", "organization") in terms
    cmd = {t.text for t in detector.terms_for("command-r-plus")}
    assert "command" not in cmd and "command plus" not in cmd
    phi = {t.text for t in detector.terms_for("phi-3-mini")}
    assert "phi" not in phi and "phi-3-mini" in phi
    short = IdentityLeakDetector.from_specs(
        [ModelSpec(name="yi-34b", provider="demo", aliases=["Yi"])]
    )
    texts = {t.text for t in short.terms_for("yi-34b")}
    assert "yi-34b" in texts and "Yi" in texts  # explicit names count even when short
    assert short.first("I am Yi-34B.") is not None
    assert short.first("yield the yin and yang") is None
    custom = IdentityLeakDetector.from_specs(SPECS, stopwords={"claude"})
    assert custom.first("Claude Monet painted water lilies.", ["claude-3-5-sonnet"]) is None


def test_all_matches_come_in_text_order(detector):
    found = detector.find("Made by OpenAI: I'm ChatGPT (gpt-4o-mini).", ["gpt-4o-mini"])
    assert [m.term for m in found][:2] == ["OpenAI", "ChatGPT"]
    assert [m.start for m in found] == sorted(m.start for m in found)


def test_names_in_scripts_without_spaces_are_found():
    """A registry alias or organization written in Chinese is a term too, matched inside
    text that has no spaces between words."""
    spec = ModelSpec(
        name="qwen2.5-72b", provider="demo", aliases=["通义千问"], organization="阿里巴巴"
    )
    detector = IdentityLeakDetector.from_specs([spec])
    match = detector.first("你好！我是通义千问，一个大型语言模型。")
    assert match is not None and (match.term, match.kind) == ("通义千问", "alias")
    assert detector.first("我由阿里巴巴开发。").kind == "organization"
    assert detector.first("我是一个大型语言模型，很高兴为你服务。") is None
    assert detector.first("Ich bin Qwen, ein Sprachmodell.").term == "qwen"

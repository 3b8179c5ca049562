"""Is a prompt about code? A heuristic over what coding prompts show.

Strong evidence on its own: a code block tagged with a language, a stack trace, a request
to write or fix code ("implement a function"), the name of a programming language or coding
library, or several lines that read like source code (definitions, imports, statements
ending in ``;``, braces, tags). Otherwise a prompt must name a technical tool (git, an API,
Docker) *and* ask for something coders do. Words that are also everyday English (Java the
island, Ruby the name, Swift the singer, "go", "R", "C") only count beside a code-like line,
so "a trip to Java" or "a ruby ring" stay negative.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from arena.pipeline.tags import DeterministicTagger, PromptRecord, Tag

_FENCE = re.compile(r"^\s*(?:```|~~~)", re.MULTILINE)
_TAGGED_FENCE = re.compile(r"^\s*(?:```|~~~)\s*[A-Za-z][\w+#.-]*\s*$", re.MULTILINE)
_TRACE = re.compile(
    r"Traceback \(most recent call last\)|^\s+at [\w.$]+\(.*:\d+\)|"
    r"\b(?:SyntaxError|TypeError|NameError|ValueError|NullPointerException|"
    r"segmentation fault|undefined reference to|ModuleNotFoundError)\b",
    re.MULTILINE | re.IGNORECASE,
)
_CODE_LINE = re.compile(
    r"^\s*(?:"
    r"def \w+\s*\(|class \w+\s*[:({]|(?:async )?function\s*\w*\s*\(|"
    r"#include\s*[<\"]|import [\w.]+|from [\w.]+ import |using namespace |package [\w.]+;|"
    r"(?:public|private|protected|static)\s+[\w<>\[\]]+\s+\w+\s*\(|"
    r"(?:const|let|var)\s+\w+\s*=|(?:int|void|char|float|double|bool)\s+\*?\w+\s*[(=;]|"
    r"(?:if|for|while|switch)\s*\(.*\)\s*\{?|return\b.*;|\}\s*(?:else\s*\{)?|"
    r"[\w.\[\]]+\s*(?:=|\+=|-=)\s*[^=].*;|\w+(?:\.\w+)*\(.*\);|"
    r"SELECT\s+.+\s+FROM\s|INSERT\s+INTO\s|CREATE\s+TABLE\s|"
    r"<(?:div|html|script|body|span|button|head|p|a|ul|li|input|form)\b[^>]*>|"
    r"\$\s+(?:pip|npm|git|cd|ls|sudo|docker|python|cargo|make)\b|"
    r"(?:console\.log|System\.out\.print|printf|std::cout)\b"
    r")",
    re.IGNORECASE,
)
# Names of languages and coding tools: code wherever they appear.
_LANGUAGE_NAMES = re.compile(
    r"(?<![\w+#])(?:python|javascript|typescript|c\+\+|c#|golang|php|kotlin|haskell|"
    r"powershell|bash|zsh|matlab|numpy|pandas|pytorch|tensorflow|django|flask|fastapi|"
    r"node\.?js|react(?:js)?|vue\.?js|jquery|html5?|css|sql|mysql|postgres(?:ql)?|"
    r"sqlite|mongodb|regex|regexp|dockerfile|verilog|vhdl|systemverilog|fortran|cobol|"
    r"lua|perl|elixir|erlang|clojure|ocaml|f#|scala|solidity|gdscript|vba|objective-c|"
    r"asp\.net|laravel|selenium|seaborn|matplotlib|sklearn|shiny|gherkin|"
    r"codebase|llvm|beautifulsoup|scrapy|testbench|leetcode|shell script)"
    r"(?![\w+#])",
    re.IGNORECASE,
)
# Technical words that are code only beside a request or a code-like line.
_PLAIN_TECH = re.compile(
    r"(?<![\w+#])(?:docker|kubernetes|terraform|assembly|x86|arduino|dart|flutter|"
    r"angular|unity3d|godot|excel formula|github|git|api|sdk|cli|npm|pip|webpack|"
    r"linux|nix|\.net|spring boot|rails)(?![\w+#])",
    re.IGNORECASE,
)
# Words that mean code only next to a coding request.
_AMBIGUOUS_TECH = re.compile(
    r"(?<![\w+#])(?:java|rust|ruby|swift|go|r|c|julia|scheme|prolog|haskell|"
    r"json|yaml|xml|csv|excel|latex|unix|windows|server|database|compiler|frontend|backend)(?![\w+#])",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"\b(?:code|coding|program(?:ming|s)?|script|function|method|class(?:es)?|"
    r"algorithm|implement(?:ation|ing)?|debug(?:ging)?|bug|compile[sr]?|"
    r"refactor|snippet|syntax|variable|loop|recursion|recursive|array|linked list|"
    r"binary tree|hash ?map|data structure|runtime|time complexity|space complexity|"
    r"unit tests?|endpoint|library|framework|query|queries|regular expression|"
    r"stack overflow|repo|repository|pull request|deploy|install|website|web page|webpage|"
    r"app|application|software|command line|terminal|source)\b",
    re.IGNORECASE,
)
# A request to write or fix code, however phrased ("implement a function", "debug this
# script"); "function" alone is not enough (f(x) is a function in maths too).
_STRONG = re.compile(
    r"\b(?:write|implement|develop|create|debug|fix|optimi[sz]e|refactor|compile|code)\b"
    r"[^.?!\n]{0,60}?\b(?:functions?|programs?|code|class|method|algorithm|"
    r"bug|loop|api|endpoint|unit tests?|regex|regular expression|website|web ?app|module|"
    r"binary search|sort(?:ing)?|array|linked list|hash ?map|stack|queue|trie|heap|parser|"
    r"cache|graph traversal)\b|"
    r"\b(?:the|this|my|your|following|sample|example|source|dead|pseudo) ?code\b",
    re.IGNORECASE,
)
MIN_CODE_LINES = 2


def code_like_lines(text: str) -> int:
    """How many lines of ``text`` read like source code."""
    return sum(1 for line in text.splitlines() if _CODE_LINE.match(line))


def is_coding(text: str) -> bool:
    """True when the prompt is about programming (see the module docstring)."""
    if _TAGGED_FENCE.search(text) or _TRACE.search(text):
        return True
    lines = code_like_lines(text)
    if lines >= MIN_CODE_LINES or _STRONG.search(text):
        return True
    if _FENCE.search(text) and (lines or _PLAIN_TECH.search(text) or _LANGUAGE_NAMES.search(text)):
        return True  # an untagged block may hold a poem or equations: want one more sign
    asks = _REQUEST.search(text) is not None
    if _LANGUAGE_NAMES.search(text):
        return True
    if _PLAIN_TECH.search(text) and (asks or lines):
        return True
    return bool(_AMBIGUOUS_TECH.search(text) and lines)


def _run(record: PromptRecord) -> Sequence[Tag]:
    return [Tag("is_code", is_coding("\n".join(record.prompts)))]


CODING = DeterministicTagger(name="coding", version="1", tag_names=("is_code",), run=_run)

"""Loading the public benchmark layouts and choosing/filling judge prompts.

Real data (see /work/shared/data/SOURCES.md): MT-Bench questions, judge prompts and GPT-4
reference answers from FastChat (lm-sys/FastChat, fastchat/llm_judge/data, Apache-2.0);
Arena-Hard v0.1 questions and answers from arena-hard-auto (lmarena/arena-hard-auto,
Apache-2.0).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from arena.errors import BadRequest
from arena.judge.benchmark_files import (
    answer_from_record,
    attach_references,
    load_answers,
    load_judge_prompts,
    load_questions,
    load_references,
    question_from_record,
)
from arena.judge.prompts import PromptBook, pair_fields, render, single_fields
from arena.judge.sources import JsonlAppender, read_jsonl_if_exists
from arena.judge.verdicts import Scale
from support.shared_data import SHARED_DATA

DATA = SHARED_DATA
MT = DATA / "mt_bench"
AH = DATA / "arena_hard_v0.1"


def test_mt_bench_questions_and_references() -> None:
    questions = load_questions(MT / "question.jsonl")
    assert len(questions) == 80
    assert Counter(q.category for q in questions) == dict.fromkeys(
        ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"],
        10,
    )
    assert all(len(q.turns) == 2 for q in questions)
    refs = load_references(MT / "reference_answer_gpt-4.jsonl")
    questions = attach_references(questions, refs)
    with_ref = {q.category for q in questions if q.reference}
    assert {"math", "reasoning", "coding"} <= with_ref
    assert all(len(q.reference) == 2 for q in questions if q.category == "math")


def test_arena_hard_questions_and_answers_load() -> None:
    questions = load_questions(AH / "question.jsonl")
    assert len(questions) == 500
    assert all(len(q.turns) == 1 and q.turns[0] for q in questions)
    assert questions[0].question_id == "328c149ed45a41c0b9d6f14659e63599"
    answers = load_answers([AH / "model_answer"])
    assert set(answers) == {"gpt-4-0314", "gpt-4-0613", "gpt-3.5-turbo-0125"}
    keys = {q.key for q in questions}
    for model, by_q in answers.items():
        assert set(by_q) == keys, model
        assert all(len(a.turns) == 1 and a.turns[0].strip() for a in by_q.values())


def test_layout_variants() -> None:
    old_ah = question_from_record(
        {"question_id": "x1", "category": "arena-hard-v0.1", "turns": [{"content": "Hi?"}]}
    )
    assert old_ah.turns == ("Hi?",)
    vicuna = question_from_record({"question_id": 3, "text": "Why?", "category": "generic"})
    assert vicuna.turns == ("Why?",) and vicuna.key == "3"
    ans = answer_from_record(
        {
            "question_id": "x1",
            "answer_id": "a",
            "model_id": "m",
            "choices": [{"index": 0, "turns": [{"content": "Hello", "token_len": 2}]}],
        }
    )
    assert ans.turns == ("Hello",) and ans.completion_tokens == (2,)
    with pytest.raises(BadRequest, match="neither question_id nor uid"):
        question_from_record({"turns": ["x"]})


def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question_id": 1, "turns": ["a"]}\nnot json\n')
    with pytest.raises(BadRequest, match=r"q.jsonl:2: not valid JSON"):
        load_questions(bad)
    dup = tmp_path / "d.jsonl"
    dup.write_text('{"question_id": 1, "turns": ["a"]}\n{"question_id": 1, "turns": ["b"]}\n')
    with pytest.raises(BadRequest, match="more than once"):
        load_questions(dup)
    with pytest.raises(BadRequest, match="cannot read"):
        load_questions(tmp_path / "missing.jsonl")


def test_questions_load_from_a_url() -> None:
    body = (MT / "question.jsonl").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/question.jsonl":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert len(load_questions(f"{base}/question.jsonl")) == 80
        with pytest.raises(BadRequest, match="404"):
            load_questions(f"{base}/nope.jsonl")
    finally:
        server.shutdown()


def test_prompt_book_picks_mt_bench_prompts_by_shape() -> None:
    book = PromptBook(load_judge_prompts(MT / "judge_prompts.jsonl"))
    picks = {
        (scale, multi, ref): book.choose(scale, multi_turn=multi, reference=ref).name
        for scale in (Scale.RATING, Scale.PAIR)
        for multi in (False, True)
        for ref in (False, True)
    }
    assert picks == {
        (Scale.RATING, False, False): "single-v1",
        (Scale.RATING, False, True): "single-math-v1",
        (Scale.RATING, True, False): "single-v1-multi-turn",
        (Scale.RATING, True, True): "single-math-v1-multi-turn",
        (Scale.PAIR, False, False): "pair-v2",
        (Scale.PAIR, False, True): "pair-math-v1",
        (Scale.PAIR, True, False): "pair-v2-multi-turn",
        (Scale.PAIR, True, True): "pair-math-v1-multi-turn",
    }
    with pytest.raises(BadRequest, match="no prompt for: graded_pair"):
        book.choose(Scale.GRADED_PAIR, multi_turn=False, reference=False)
    with pytest.raises(BadRequest, match="unknown judge prompt"):
        PromptBook(load_judge_prompts(MT / "judge_prompts.jsonl"), ["nope"])


def test_render_fills_every_field() -> None:
    book = PromptBook(load_judge_prompts(MT / "judge_prompts.jsonl"))
    prompt = book.choose(Scale.RATING, multi_turn=True, reference=True)
    messages = render(prompt, single_fields(("Q1", "Q2"), ("A1", "A2"), ("R1", "R2")))
    assert messages[0]["role"] == "system"
    user = messages[1]["content"]
    for piece in ("Q1", "Q2", "A1", "A2", "R1", "R2"):
        assert piece in user
    assert "{" not in user
    pair = book.choose(Scale.PAIR, multi_turn=False, reference=False)
    text = render(pair, pair_fields(("Q",), ("left",), ("right",), None))[1]["content"]
    assert text.index("left") < text.index("right")
    with pytest.raises(BadRequest, match="needs answer, ref_answer_1"):
        render(book.choose(Scale.RATING, multi_turn=False, reference=True), {"question": "q"})


def test_appender_resumes_after_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n{"a": 2')  # the process died mid-write
    assert read_jsonl_if_exists(path) == [{"a": 1}]
    with JsonlAppender(path) as out:
        out.write({"a": 3})
    assert [json.loads(x) for x in path.read_text().splitlines()] == [{"a": 1}, {"a": 3}]

"""Real judge data through the rating engine.

- Vicuna-80 (PRD, "Peer Rank and Discussion", data/vicuna80, MIT; /work/shared/data/vicuna80):
  GPT-4 pairwise reviews of every ordered pair of gpt-4, gpt-3.5, claude, bard and
  vicuna-13b answers on 80 questions. Reviews end with 1 (assistant 1 better), 2 (assistant 2)
  or 3 (tie), recorded in ``score``; answers are matched by ``answer1_id``/``answer2_id``.
- Arena-Hard (arena-hard-auto, data/arena_hard_battles.jsonl and data/arena-hard-v0.1,
  Apache-2.0; /work/shared/data/arena_hard_v0.1): 2,136 judge battles of four models against
  claude-3-haiku, and the v0.1 answers of gpt-4-0314 (baseline), gpt-4-0613, gpt-3.5-turbo.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter

import pytest

from arena.judge.agreement import agreement, judge_votes
from arena.judge.judgments import graded_battles, load_judgments, pair_battles, table_battles
from arena.judge.report import build_report, infer_baseline
from arena.judge.scores import leaderboard, pair_records
from support.shared_data import SHARED_DATA

VICUNA = SHARED_DATA / "vicuna80"
ARENA_HARD = SHARED_DATA / "arena_hard_v0.1"


def vicuna_pair_rows() -> list[dict]:
    """PRD reviews as MT-Bench pairwise rows (one game each; both orders are separate files)."""
    model_of = {}
    for path in (VICUNA / "generations").glob("answer_*.jsonl"):
        name = path.stem.removeprefix("answer_")
        for line in path.read_text().splitlines():
            model_of[json.loads(line)["answer_id"]] = name
    rows = []
    for path in sorted((VICUNA / "ratings-gpt4").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            review = json.loads(line)
            m1, m2 = model_of[review["answer1_id"]], model_of[review["answer2_id"]]
            winner = {1: "model_1", 2: "model_2", 3: "tie"}[review["score"]]
            # The verdict is the review's last line; check the recorded score matches it.
            assert review["text"].strip()[-1] == str(review["score"])
            rows.append(
                {
                    "question_id": review["question_id"],
                    "model_1": m1,
                    "model_2": m2,
                    "g1_winner": winner,
                    "g2_winner": winner,
                    "judge": ["gpt-4", "prd-threeclass"],
                    "turn": 1,
                }
            )
    return rows


def test_vicuna80_reviews_to_leaderboard() -> None:
    rows = vicuna_pair_rows()
    assert len(rows) == 20 * 80
    columns, skipped = pair_battles(rows)
    assert skipped == 0 and len(columns) == 1600
    board = leaderboard(columns, rounds=50, seed=1)
    assert board.models[0] == "gpt4"
    assert set(board.models) == {"gpt4", "gpt35", "claude", "bard", "vicuna-13b"}
    assert all(
        lo <= r <= hi for r, lo, hi in zip(board.ratings, board.lower, board.upper, strict=True)
    )
    records = {r.model: r for r in pair_records(columns)}
    assert records["gpt4"].adjusted_win_rate == max(r.adjusted_win_rate for r in records.values())


def test_vicuna80_position_swap_agreement() -> None:
    """The same judge on the two orders of each pair: a real measure of position consistency."""
    rows = vicuna_pair_rows()
    first = {}
    second = {}
    for r in rows:
        # Files come in both orders; split them by which model is listed first alphabetically.
        target = first if r["model_1"] < r["model_2"] else second
        target[(r["question_id"], *sorted((r["model_1"], r["model_2"])))] = r
    assert len(first) == len(second) == 800

    def votes(chosen: dict) -> dict:
        return judge_votes(chosen.values())["gpt-4"]

    result = agreement(votes(first), votes(second))
    assert result.n_with_tie == 800
    assert 0.0 < result.without_tie <= 1.0 and result.n_without_tie < 800
    assert result.without_tie >= result.with_tie  # ties are where the two orders disagree most


def test_arena_hard_battles_score_through_show() -> None:
    path = ARENA_HARD / "arena_hard_battles.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    columns = table_battles(rows)
    assert infer_baseline(columns) == "claude-3-haiku-20240307"
    report = build_report([str(path)], rounds=100, seed=0)
    ah = report.arena_hard
    assert ah is not None and ah.baseline == "claude-3-haiku-20240307" and ah.n_battles == 2136
    scores = {r.model: r for r in ah.rows}
    # Every battle is against the baseline, so the anchored Bradley-Terry fit must reproduce
    # each model's observed share (ties half) exactly: a real check of the whole path.
    for model in scores:
        if model == ah.baseline:
            assert scores[model].score == pytest.approx(50.0)
            continue
        mine = [r for r in rows if model in (r["model_a"], r["model_b"])]
        count = Counter(
            "win"
            if r["winner"] == ("model_a" if r["model_a"] == model else "model_b")
            else "tie"
            if r["winner"].startswith("tie")
            else "loss"
            for r in mine
        )
        observed = 100 * (count["win"] + 0.5 * count["tie"]) / len(mine)
        assert scores[model].score == pytest.approx(observed, abs=0.01), model
        assert scores[model].lower < scores[model].score < scores[model].upper
    order = [r.model for r in ah.rows]
    assert order[0] == "claude-3-5-sonnet-20240620" and order[-1] == "claude-3-haiku-20240307"


def test_arena_hard_answers_and_judgments_roundtrip(tmp_path) -> None:
    """Arena-Hard's own judgment layout (v0.1: no baseline field) is read with --baseline."""
    row = {
        "question_id": "q1",
        "model": "gpt-4-0613",
        "judge": "gpt-4-1106-preview",
        "games": [
            {"user_prompt": "...", "judgment": "... [[A>B]]", "score": "A>B"},
            {"user_prompt": "...", "judgment": "... [[A>>B]]", "score": "A>>B"},
        ],
    }
    path = tmp_path / "gpt-4-0613.jsonl"
    path.write_text(json.dumps(row) + "\n")
    data = load_judgments([tmp_path])
    assert len(data.graded) == 1

    columns, _ = graded_battles(data.graded, baseline="gpt-4-0314")
    assert columns.model_a.tolist() == ["gpt-4-0314", "gpt-4-0613"]
    assert columns.winner.tolist() == ["model_a", "model_a"]
    assert columns.weights.tolist() == [1.0, 3.0]


async def test_style_control_removes_a_pure_length_preference(
    tmp_path, fake_provider, graded_prompt
) -> None:
    """A judge that only rewards length, on real Arena-Hard answers: the raw scores move far
    from 50%, style control (answer length + markdown, per side) pulls them back."""
    from arena.judge.benchmark_files import JudgePrompt, load_answers, load_questions
    from arena.judge.calls import JudgeCaller, RetryPolicy
    from arena.judge.grading import Grader, Mode, grade, plan_tasks
    from arena.judge.prompts import PromptBook

    questions = load_questions(ARENA_HARD / "question.jsonl")[:150]
    answers = load_answers([ARENA_HARD / "model_answer"])

    def length_judge(messages):
        """Prefers the longer answer with probability sigmoid(4 * log(len A / len B)); the
        coin is a hash of the prompt, so the run is reproducible (and, being noisy, the
        outcomes are not perfectly separable by length, as no real judge's are)."""
        text = messages[-1]["content"]
        a = re.search(r"Assistant A's Answer\|>\n(.*?)\n<\|The End of Assistant A", text, re.S)
        b = re.search(r"Assistant B's Answer\|>\n(.*?)\n<\|The End of Assistant B", text, re.S)
        log_ratio = math.log(max(1, len(a.group(1))) / max(1, len(b.group(1))))
        p_a = 1 / (1 + math.exp(-4 * log_ratio))
        u = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 16**8
        if abs(u - 0.5) < 0.05:
            return "About the same. [[A=B]]"
        strong = abs(log_ratio) > 0.4
        if u < p_a:
            return "A is longer. [[A>>B]]" if strong else "A is longer. [[A>B]]"
        return "B is longer. [[B>>A]]" if strong else "B is longer. [[B>A]]"

    prompt = JudgePrompt(**graded_prompt)
    grader = Grader(Mode.ARENA_HARD, PromptBook([prompt]), answers)
    models = ["gpt-4-0613", "gpt-3.5-turbo-0125"]
    tasks, missing = plan_tasks(Mode.ARENA_HARD, questions, answers, models, baseline="gpt-4-0314")
    assert missing == 0 and len(tasks) == 300
    caller = JudgeCaller(
        "length-judge", fake_provider(length_judge), policy=RetryPolicy(attempts=1)
    )
    out = tmp_path / "ah.jsonl"
    await grade(grader, tasks, [caller], out, concurrency=8, show_progress=False)
    report = build_report([str(out)], answers=[str(ARENA_HARD / "model_answer")], rounds=30)
    ah = report.arena_hard
    assert ah.baseline == "gpt-4-0314" and ah.style_rows is not None
    raw = {r.model: r.score for r in ah.rows}
    styled = {r.model: r.score for r in ah.style_rows}
    for model in models:
        assert raw[model] < 42, raw  # both answer shorter than gpt-4-0314 does
        assert abs(styled[model] - 50) < abs(raw[model] - 50) / 2, (raw, styled)
    assert ah.style_coefficients["answer_tokens"] > 0

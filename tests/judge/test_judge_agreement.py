"""Agreement: the with/without-tie arithmetic, and judging stored arena battles via the CLI.

The battles are built from real Arena-Hard v0.1 answers of gpt-4-0613 and gpt-3.5-turbo-0125
(arena-hard-auto, Apache-2.0; /work/shared/data/arena_hard_v0.1) in the clean-battle layout;
their "human" votes are synthetic (the longer answer wins, near-equal lengths tie), since
no human votes on these conversations are public. The judge is the scripted OpenAI-format
stand-in on loopback, reached through the real openai_compatible provider.
"""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from arena.cli import app
from arena.judge.agreement import agreement, battles_as_benchmark, human_votes, vote_key
from arena.judge.benchmark_files import load_answers, load_questions
from support.shared_data import SHARED_DATA

AH = SHARED_DATA / "arena_hard_v0.1"
MT_PROMPTS = SHARED_DATA / "mt_bench/judge_prompts.jsonl"


def test_agreement_with_and_without_ties() -> None:
    k = [vote_key(i, "x", "y", 1) for i in range(6)]
    first = {k[0]: "x", k[1]: "y", k[2]: "tie", k[3]: "x", k[4]: "tie", k[5]: "y"}
    second = {k[0]: "x", k[1]: "x", k[2]: "tie", k[3]: "tie", k[4]: "y"}
    result = agreement(first, second)
    # shared: k0..k4 (5); equal: k0, k2 -> 2/5; without ties: k0, k1 -> 1/2
    assert (result.n_with_tie, result.agree_with_tie) == (5, 2)
    assert (result.n_without_tie, result.agree_without_tie) == (2, 1)
    assert result.with_tie == pytest.approx(0.4) and result.without_tie == pytest.approx(0.5)
    assert vote_key(1, "y", "x", 1) == vote_key(1, "x", "y", 1)


def _conversation(question: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def _battles(n: int) -> list[dict]:
    questions = load_questions(AH / "question.jsonl")[:n]
    answers = load_answers([AH / "model_answer"])
    battles = []
    for i, q in enumerate(questions):
        a = answers["gpt-4-0613"][q.key].turns[0]
        b = answers["gpt-3.5-turbo-0125"][q.key].turns[0]
        ratio = len(a) / max(1, len(b))
        winner = "tie" if 0.9 <= ratio <= 1.1 else "model_a" if ratio > 1 else "model_b"
        if i % 2:  # both sides of the screen
            a, b = b, a
            winner = {"model_a": "model_b", "model_b": "model_a"}.get(winner, winner)
            models = ("gpt-3.5-turbo-0125", "gpt-4-0613")
        else:
            models = ("gpt-4-0613", "gpt-3.5-turbo-0125")
        battles.append(
            {
                "question_id": q.key,
                "model_a": models[0],
                "model_b": models[1],
                "winner": winner,
                "judge": "synthetic-voter",
                "turn": 1,
                "anony": True,
                "language": "English",
                "tstamp": 1.0 + i,
                "conversation_a": _conversation(q.turns[0], a),
                "conversation_b": _conversation(q.turns[0], b),
            }
        )
    return battles


def test_battles_as_benchmark_skips_what_cannot_be_judged() -> None:
    battles = _battles(4)
    long = dict(battles[0], question_id="long")
    long["conversation_a"] = long["conversation_a"] * 3
    long["conversation_b"] = long["conversation_b"] * 3
    odd = dict(battles[1], question_id="odd")
    odd["conversation_b"] = _conversation("another question", "x")
    bench = battles_as_benchmark(
        [*battles, long, odd, dict(battles[2], model_b=battles[2]["model_a"])]
    )
    assert len(bench.tasks) == 4
    assert bench.skipped == {"too_many_turns": 1, "inconsistent_conversation": 1, "same_model": 1}
    votes = human_votes(bench.battles, bench.keys)
    assert len(votes) == 4


def _answer_between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def prefer_longer(body: dict) -> str:
    text = body["messages"][-1]["content"]
    a = _answer_between(
        text, "[The Start of Assistant A's Answer]\n", "\n[The End of Assistant A's Answer]"
    )
    b = _answer_between(
        text, "[The Start of Assistant B's Answer]\n", "\n[The End of Assistant B's Answer]"
    )
    ratio = len(a) / max(1, len(b))
    if body["model"] == "judge-2":  # a contrarian second judge: prefers the shorter answer
        ratio = 1 / ratio if ratio else 0
    verdict = "C" if 0.9 <= ratio <= 1.1 else "A" if ratio > 1 else "B"
    return f"Assistant {verdict} is better. [[{verdict}]]"


def test_judge_vs_human_and_judge_vs_judge(tmp_path, judge_standin) -> None:
    battles = _battles(24)
    battles_path = tmp_path / "battles.jsonl"
    battles_path.write_text("\n".join(json.dumps(b) for b in battles) + "\n")
    judge_standin.script = prefer_longer
    config = tmp_path / "arena.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": [
                    {
                        "name": n,
                        "provider": "openai_compatible",
                        "base_url": judge_standin.base_url + "/v1",
                    }
                    for n in ("judge-1", "judge-2")
                ]
            }
        )
    )
    runner = CliRunner()
    outs = {}
    for judge in ("judge-1", "judge-2"):
        outs[judge] = tmp_path / f"{judge}.jsonl"
        result = runner.invoke(
            app,
            [
                "judge",
                "agreement",
                "--battles",
                str(battles_path),
                "-j",
                judge,
                "--judge-prompts",
                str(MT_PROMPTS),
                "-c",
                str(config),
                "-o",
                str(outs[judge]),
                "--no-progress",
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        ties = sum(b["winner"] == "tie" for b in battles)
        decisive = len(battles) - ties
        if judge == "judge-1":
            # Same rule as the synthetic voters, in both orders: full agreement.
            assert (
                f"with ties 100.0% (24/24), without ties 100.0% ({decisive}/{decisive})"
                in result.output
            )
        else:
            assert (
                f"with ties {ties / 24:.1%} ({ties}/24), without ties 0.0% (0/{decisive})"
                in result.output
            )
    rows = [json.loads(x) for x in outs["judge-1"].read_text().splitlines()]
    assert len(rows) == 24 and all(r["g1_status"] == r["g2_status"] == "ok" for r in rows)
    result = runner.invoke(
        app, ["judge", "agreement", "-i", str(outs["judge-1"]), "-i", str(outs["judge-2"])]
    )
    assert result.exit_code == 0, result.output
    assert "judge-1 vs judge-2: with ties" in result.output
    assert "without ties 0.0%" in result.output
    result = runner.invoke(app, ["judge", "agreement", "-i", str(outs["judge-1"])])
    assert result.exit_code == 2 and "two judges" in result.output
    # The judged battles also make a pairwise table and a Bradley-Terry leaderboard.
    report = tmp_path / "report.json"
    result = runner.invoke(
        app, ["judge", "show", "-i", str(outs["judge-1"]), "--rounds", "20", "--json", str(report)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    records = {r["model"]: r for r in doc["pairwise"]}
    longer_wins = sum(
        (b["winner"] == "model_a" and b["model_a"] == "gpt-4-0613")
        or (b["winner"] == "model_b" and b["model_b"] == "gpt-4-0613")
        for b in battles
    )
    assert records["gpt-4-0613"]["wins"] == longer_wins
    assert {r["model"] for r in doc["pairwise_ratings"]} == {"gpt-4-0613", "gpt-3.5-turbo-0125"}

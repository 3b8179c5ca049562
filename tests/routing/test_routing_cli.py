"""``arena route train | calibrate | eval`` end to end: synthetic battles and a benchmark in
RouteLLM's layout, the real GSM8K table, JSON output, and clear exit-2 errors."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from arena.cli import app
from support.shared_data import SHARED_DATA

from .conftest import (
    STRONG,
    WEAK,
    pair_battles,
    pair_table,
    preference_rows,
    write_jsonl,
    write_routellm_folder,
)

runner = CliRunner()


def _run(*args: str):
    return runner.invoke(app, ["route", *args], catch_exceptions=False)


def test_train_calibrate_and_eval_end_to_end(tmp_path):
    battles = write_jsonl(tmp_path / "battles.jsonl", preference_rows(pair_battles(300, seed=21)))
    table = pair_table(120, seed=22)
    root = write_routellm_folder(tmp_path / "evals", table, contaminated=[table.prompts[0]])
    out = tmp_path / "router-mf"
    result = _run("train", "--router", "mf", "--from", str(battles), "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["battles"] == 300 and summary["strong"] == "big-model"
    assert (out / "router.json").exists() and (out / "arrays.npz").exists()

    result = _run("calibrate", "--router", str(out), "--strong-share", "0.3", "--json")
    assert result.exit_code == 0, result.output
    cal = json.loads(result.output)
    assert cal["prompts"] == 300  # the training prompts by default
    assert abs(cal["strong_share"] - 0.3) < 0.01

    prompts = write_jsonl(tmp_path / "sample.jsonl", [{"prompt": p} for p in table.prompts])
    result = _run(
        "calibrate", "--router", "random", "--strong-share", "0.5", "--data", str(prompts),
        "--json",
    )  # fmt: skip
    assert json.loads(result.output)["strong_share"] == 0.5

    plot = tmp_path / "curve.png"
    result = _run(
        "eval", "--router", str(out), "--benchmark", "gsm8k", "--data", str(root),
        "--strong", STRONG, "--weak", WEAK, "--plot", str(plot), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["prompts"] == 119 and report["excluded_contaminated"] == 1
    by_name = {r["router"]: r for r in report["routers"]}
    assert set(by_name) == {str(out), "random"}
    assert by_name[str(out)]["apgr"] > by_name["random"]["apgr"] + 0.15
    assert plot.read_bytes()[:4] == b"\x89PNG"

    table_out = _run(
        "eval", "-r", str(out), "-b", "gsm8k", "--data", str(root), "--strong", STRONG,
        "--weak", WEAK,
    )  # fmt: skip
    assert "APGR" in table_out.output and "CPT(50%)" in table_out.output


def test_held_out_training_on_the_real_gsm8k_table(tmp_path):
    root = SHARED_DATA / "routellm_evals"
    out = tmp_path / "clf"
    result = _run(
        "train", "--router", "classifier", "--from", f"routellm:{root}", "--benchmark", "gsm8k",
        "--holdout", "0.5", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["prompts"] + summary["held_out_prompts"] == 1307
    result = _run("eval", "-r", str(out), "-b", "gsm8k", "--data", str(root), "--json")
    report = json.loads(result.output)
    # evaluated only on the prompts it never saw
    assert report["prompts"] == summary["held_out_prompts"]
    assert report["excluded_training"] == summary["prompts"]
    clf = next(r for r in report["routers"] if r["router"] == str(out))
    assert 0.0 < clf["apgr"] < 1.0
    assert np.isclose(clf["curve"]["share"][-1], 1.0)


def test_bad_input_exits_2_with_a_message(tmp_path):
    cases = [
        ("train", "--router", "magic", "--from", "x.jsonl", "--out", str(tmp_path / "o")),
        ("train", "--router", "mf", "--from", str(tmp_path / "none.jsonl"), "--out", "o"),
        ("train", "--router", "mf", "--from", "judge:a.jsonl", "--out", "o"),
        ("eval", "--router", "nowhere", "--benchmark", "gsm8k", "--data", str(tmp_path)),
        ("eval", "--router", "mf", "--benchmark", "gsm8k", "--data", str(tmp_path)),
        ("eval", "--router", "random", "--benchmark", "boolq", "--data", str(tmp_path)),
        ("eval", "--router", "random", "--benchmark", "gsm8k", "--data", str(tmp_path)),
        ("calibrate", "--router", "random", "--strong-share", "0.5"),
        ("calibrate", "--router", str(tmp_path), "--strong-share", "0.5"),
    ]
    for args in cases:
        result = runner.invoke(app, ["route", *args])
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output
        assert result.output.strip(), args
    result = runner.invoke(app, ["route", "calibrate", "--router", "random", "--strong-share", "2"])
    assert result.exit_code == 2


def test_train_from_the_store_and_from_judge_files(store_db, tmp_path):
    from datetime import UTC, datetime, timedelta

    from arena.store.battles import create_battle
    from arena.store.conversations import add_message
    from arena.store.votes import record_vote

    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    for i, (prompt, vote) in enumerate(
        [("integral of x", "a"), ("hello friend", "b"), ("prove the theorem", "a"), ("hi", "tie")]
    ):
        b = create_battle(store_db, mode="battle", model_a="alpha", model_b="beta", now=t0)
        for conv in (b.conversation_a_id, b.conversation_b_id):
            add_message(store_db, conv, role="user", content=prompt)
            add_message(store_db, conv, role="assistant", content="answer")
        record_vote(store_db, b.id, vote, ip_hash="h", now=t0 + timedelta(seconds=i + 1))
    out = tmp_path / "from-store"
    url = store_db.url
    result = _run("train", "--router", "sw-ranking", "--from", url, "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["battles"] == 4 and set(summary["models"]) == {"alpha", "beta"}

    questions = write_jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "turns": ["integral of x"]}])
    verdicts = write_jsonl(
        tmp_path / "v.jsonl",
        [{"question_id": 1, "model_1": "alpha", "model_2": "beta", "g1_winner": "model_1",
          "g2_winner": "model_2", "turn": 1}] * 2
        + [{"question_id": 1, "model_1": "alpha", "model_2": "beta", "g1_winner": "model_1",
            "g2_winner": "model_1", "turn": 1}],
    )  # fmt: skip
    result = _run(
        "train", "--router", "classifier", "--from", f"judge:{verdicts}", "--questions",
        str(questions), "--strong", "alpha", "--weak", "beta", "--out", str(tmp_path / "j"),
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["battles"] == 3


def test_embeddings_model_from_the_registry(tmp_path):
    """The default registry's demo models serve /v1/embeddings: train and evaluate with one."""
    battles = write_jsonl(tmp_path / "b.jsonl", preference_rows(pair_battles(120, seed=31)))
    table = pair_table(60, seed=32)
    root = write_routellm_folder(tmp_path / "evals", table, contaminated=[])
    cache = tmp_path / "cache"
    out = tmp_path / "mf-embed"
    result = _run(
        "train", "--router", "mf", "--from", str(battles), "--out", str(out),
        "--embed-model", "demo-aurora", "--embed-cache", str(cache), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "router.json").read_text())
    assert meta["featurizer"]["kind"] == "embeddings"
    assert meta["featurizer"]["model"] == "demo-aurora"
    cached = len(list(cache.rglob("*.npy")))
    assert cached == 120
    result = _run(
        "eval", "-r", str(out), "-b", "gsm8k", "--data", str(root), "--strong", STRONG,
        "--weak", WEAK, "--embed-cache", str(cache), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["prompts"] == 60
    assert len(list(cache.rglob("*.npy"))) == cached + 60
    result = runner.invoke(
        app, ["route", "train", "--router", "mf", "--from", str(battles), "--out", "x",
              "--embed-model", "no-such-model"],
    )  # fmt: skip
    assert result.exit_code == 2 and "no-such-model" in result.output

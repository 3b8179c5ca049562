"""Loading battles: JSON array, JSON Lines, Parquet and the Arena-Hard battles file."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from arena.cli import app
from arena.errors import BadRequest
from arena.leaderboard.battle_table import load_battles, normalize_rows
from support.shared_data import SHARED_DATA

ARENA_HARD_BATTLES = str(SHARED_DATA / "arena_hard_v0.1/arena_hard_battles.jsonl")


@pytest.mark.parametrize("fmt", ["json", "jsonl", "parquet"])
def test_formats_give_the_same_table(fmt, make_rows, write_rows):
    rows = make_rows(120)
    reference = load_battles(write_rows(rows, "jsonl", name="ref.jsonl")).frame
    loaded = load_battles(write_rows(rows, fmt))
    assert loaded.count == 120
    assert len(loaded.data_sha256) == 64
    assert loaded.frame.equals(reference)


def test_nested_fields_are_flattened(make_rows, write_rows):
    rows = make_rows(60)
    frame = load_battles(write_rows(rows, "json")).frame
    for row, got in zip(rows, frame.iter_rows(named=True), strict=True):
        tags = row["category_tag"]
        meta = row["conv_metadata"]
        assert got["model_a"] == row["model_a"] and got["winner"] == row["winner"]
        assert got["criteria_count"] == sum(tags["criteria_v0.1"].values())
        assert got["is_hard"] == (sum(tags["criteria_v0.1"].values()) >= 6)
        assert got["is_math"] == tags["math_v0.1"]["math"]
        assert got["is_instruction_following"] == tags["if_v0.1"]["if"]
        assert got["is_creative_writing"] == tags["creative_writing_v0.1"]["creative_writing"]
        assert got["dedup_sampled"] == row["dedup_tag"]["sampled"]
        assert got["is_multi_turn"] == (row["turn"] > 1)
        assert got["is_long_query"] == (meta["sum_user_tokens"] >= 500)
        assert got["sum_assistant_tokens_a"] == meta["sum_assistant_a_tokens"]
        assert got["header_count_b"] == sum(meta["header_count_b"].values())
        assert got["list_count_a"] == sum(meta["list_count_a"].values())
        assert got["bold_count_b"] == sum(meta["bold_count_b"].values())


def test_missing_keys_get_documented_defaults(tmp_path):
    path = tmp_path / "sparse.jsonl"
    lines = [
        {"model_a": "x", "model_b": "y", "winner": "model_a"},
        {"model_a": "y", "model_b": "x", "winner": "tie", "category_tag": {"math_v0.1": {}}},
        {"model_a": "x", "model_b": "y", "winner": "model_b", "dedup_tag": {"high_freq": True}},
    ]
    path.write_text("\n".join(json.dumps(r) for r in lines))
    frame = load_battles(path).frame
    assert frame["anony"].to_list() == [True, True, True]
    assert frame["turn"].to_list() == [1, 1, 1]
    assert frame["language"].to_list() == ["unknown"] * 3
    assert frame["dedup_sampled"].to_list() == [True, True, True]
    assert frame["dedup_high_freq"].to_list() == [False, False, True]
    assert frame["is_math"].to_list() == [False, False, False]
    assert frame["leaked"].to_list() == [False, False, False]
    assert frame["sum_assistant_tokens_a"].null_count() == 3


def test_style_features_computed_from_conversations_when_no_metadata(make_rows, write_rows):
    rows = make_rows(40, with_conversations=True, with_metadata=False)
    frame = load_battles(write_rows(rows, "jsonl")).frame
    first = frame.row(0, named=True)
    # Answer A of row 0: "# Answer" + a python code block; answer B is plain prose.
    assert first["header_count_a"] == 1 and first["header_count_b"] == 0
    assert first["list_count_a"] == 0
    assert first["sum_assistant_tokens_a"] > first["sum_assistant_tokens_b"] > 0
    assert first["is_code"] is True  # detected from the fenced block
    second = frame.row(1, named=True)
    assert second["is_code"] is False
    assert second["list_count_a"] == 1 and second["bold_count_a"] == 1
    assert frame["user_tokens"].null_count() == 0


def test_is_code_tag_wins_over_detection(tmp_path):
    rows = [
        {
            "model_a": "x",
            "model_b": "y",
            "winner": "model_a",
            "is_code": True,
            "conversation_a": [{"role": "user", "content": "hi"}],
        },
        {
            "model_a": "x",
            "model_b": "y",
            "winner": "model_a",
            "is_code": False,
            "conversation_a": [{"role": "user", "content": "```\ncode\n```"}],
        },
    ]
    path = tmp_path / "code.json"
    path.write_text(json.dumps(rows))
    assert load_battles(path).frame["is_code"].to_list() == [True, False]


def test_rows_from_store_shape_with_multimodal_content_and_leak_flag():
    rows = [
        {
            "model_a": "x",
            "model_b": "y",
            "winner": "model_b",
            "question_id": 17,
            "is_leaked": True,
            "conversation_a": [
                {"role": "user", "content": [{"type": "text", "text": "What is in this image?"}]},
                {"role": "assistant", "content": "A **cat**."},
            ],
            "conversation_b": [
                {"role": "user", "content": [{"type": "text", "text": "What is in this image?"}]},
                {"role": "assistant", "content": "1. a cat\n2. a mat"},
            ],
        }
    ]
    frame = normalize_rows(rows)
    got = frame.row(0, named=True)
    assert got["leaked"] is True
    assert got["question_id"] == "17"
    assert got["bold_count_a"] == 1 and got["list_count_b"] == 2


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(BadRequest, match="not found"):
        load_battles(tmp_path / "missing.jsonl")
    empty = tmp_path / "empty.json"
    empty.write_text("  \n")
    with pytest.raises(BadRequest, match="empty"):
        load_battles(empty)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("model_a,model_b\n")
    with pytest.raises(BadRequest, match="neither"):
        load_battles(garbage)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"model_a": "x", ')
    with pytest.raises(BadRequest, match="cannot read"):
        load_battles(broken)
    no_winner = tmp_path / "nowinner.jsonl"
    no_winner.write_text(json.dumps({"model_a": "x", "model_b": "y"}))
    with pytest.raises(BadRequest, match="winner"):
        load_battles(no_winner)
    bad_winner = tmp_path / "badwinner.jsonl"
    bad_winner.write_text(json.dumps({"model_a": "x", "model_b": "y", "winner": "left"}))
    with pytest.raises(BadRequest, match="left"):
        load_battles(bad_winner)


def test_arena_hard_battles_file_loads():
    # arena-hard-auto data/arena_hard_battles.jsonl (Apache-2.0): 2,136 judge battles with
    # only question_id, model_a, model_b and winner; see /work/shared/data/SOURCES.md.
    loaded = load_battles(ARENA_HARD_BATTLES)
    frame = loaded.frame
    assert loaded.count == 2136
    counts = frame.group_by("winner").len().sort("winner")
    assert dict(counts.iter_rows()) == {"model_a": 347, "model_b": 1758, "tie": 31}
    assert frame["anony"].all()
    assert set(frame["model_a"].unique()) == {"claude-3-haiku-20240307"}
    assert frame["model_b"].n_unique() == 4
    assert frame.schema["question_id"] == pl.String


def test_jsonl_whose_field_types_change_between_rows(tmp_path):
    # The fast reader rejects a column that turns from number to text far down the file;
    # the fallback widens it instead of failing.
    rows = [
        {"question_id": i, "model_a": "x", "model_b": "y", "winner": "model_a"} for i in range(3000)
    ]
    rows.append({"question_id": "q-text", "model_a": "y", "model_b": "x", "winner": "tie"})
    rows.append(
        {
            "model_a": "x",
            "model_b": "y",
            "winner": "model_b",
            "conversation_a": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        }
    )
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    frame = load_battles(path).frame
    assert frame.height == 3002
    assert frame["question_id"].to_list()[-3:-1] == ["2999", "q-text"]


GOOD_LINE = json.dumps({"model_a": "x", "model_b": "y", "winner": "model_a"})


def leaderboard_error(path) -> str:
    """Run ``arena leaderboard`` on a bad file; return its error with line wrapping undone."""
    result = CliRunner().invoke(app, ["leaderboard", str(path), "--rounds", "2"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"model_a": "x", oops}', "line 3, column 18: not valid JSON"),
        ("[1, 2]", "at line 3: expected a JSON object, got an array"),
        ("42", "at line 3: expected a JSON object, got a number"),
        ('{"model_a": "x", "model_b": "y"}', "at line 3: missing required field 'winner'"),
        ('{"model_b": "y", "winner": "tie"}', "at line 3: missing required field 'model_a'"),
        ('{"model_a": "x", "model_b": "y", "winner": null}', "at line 3: field 'winner' is null"),
        ('{"model_a": null, "model_b": "y", "winner": "tie"}', "at line 3: field 'model_a'"),
    ],
)
def test_cli_names_the_first_bad_jsonl_line(tmp_path, bad_line, expected):
    # Issue 10: a corrupted line used to be reported as "Syntax at character 0".
    path = tmp_path / "battles.jsonl"
    lines = [GOOD_LINE, GOOD_LINE, bad_line, *[GOOD_LINE] * 2000, bad_line]
    path.write_text("\n".join(lines) + "\n")
    error = leaderboard_error(path)
    assert "battles.jsonl" in error and expected in error
    assert "line 2004" not in error  # the first bad line, not a later one


def test_cli_names_a_truncated_last_line(tmp_path):
    path = tmp_path / "cut.jsonl"
    path.write_text("\n".join([GOOD_LINE] * 5000) + '\n{"model_a": "x", "model_b"')
    error = leaderboard_error(path)
    assert "cut.jsonl" in error
    assert "line 5001 (cut short), column 27: not valid JSON (unexpected end of data)" in error


def test_cli_line_numbers_count_blank_lines(tmp_path):
    path = tmp_path / "gaps.jsonl"
    path.write_text(f"{GOOD_LINE}\n\n   \n{GOOD_LINE}\n{{broken\n{GOOD_LINE}\n")
    assert "line 5, column 2" in leaderboard_error(path)


def test_cli_names_the_line_of_a_json_array_syntax_error(tmp_path):
    path = tmp_path / "battles.json"
    path.write_text("[\n" + ",\n".join([GOOD_LINE, GOOD_LINE, '{"model_a": "x", oops}']) + "\n]")
    error = leaderboard_error(path)
    assert "battles.json" in error and "line 4, column 18: not valid JSON" in error


def test_cli_names_the_bad_item_of_a_json_array(tmp_path):
    good = json.loads(GOOD_LINE)
    path = tmp_path / "battles.json"
    path.write_text(json.dumps([good, good, {**good, "winner": "left"}, 5], indent=1))
    error = leaderboard_error(path)
    assert "battles.json" in error and "at item 3: field 'winner' is \"left\"" in error


# Streamed reading: files are read in blocks, each normalized on its own, then concatenated.


@pytest.fixture
def small_blocks(monkeypatch):
    """Read files in 4 KiB blocks and Parquet in 23-row batches, so a few hundred battles
    span dozens of separately parsed and normalized pieces."""
    from arena.leaderboard import battle_stream

    monkeypatch.setattr(battle_stream, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(battle_stream, "PARQUET_BATCH_ROWS", 23)


def every_field_rows(make_rows) -> list[dict]:
    """Battles with every public field, some without metadata (features come from the text),
    some tagged as code and some without category tags, so the pieces differ in schema."""
    rows = make_rows(300, with_conversations=True)
    bare = make_rows(150, seed=3, with_conversations=True, with_metadata=False)
    rows = rows[:120] + bare + rows[120:]
    for row in rows[::17]:
        row["is_code"] = True
    for row in rows[::23]:
        row.pop("category_tag")
    for row in rows[::29]:
        row["is_leaked"] = True
    return rows


@pytest.mark.parametrize("fmt", ["jsonl", "json", "parquet"])
def test_batched_reading_gives_the_whole_file_table(fmt, make_rows, write_rows, small_blocks):
    import hashlib

    from arena.leaderboard.battle_columns import column_dtypes
    from arena.leaderboard.battle_normalize import normalize

    rows = every_field_rows(make_rows)
    path = write_rows(rows, fmt)
    loaded = load_battles(path)
    # The reference normalizes the whole file in one piece, as the loader did before.
    whole = normalize(pl.from_dicts(rows, infer_schema_length=None))
    assert loaded.frame.equals(whole)
    assert loaded.count == 450
    assert dict(loaded.frame.schema) == column_dtypes()
    assert loaded.data_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    # Spot checks against the generated rows.
    frame = loaded.frame
    assert frame["leaked"].sum() == len(rows[::29])
    assert frame["is_code"][0] is True and frame["criteria_count"][0] == 0
    assert frame["header_count_a"][120] == 1  # from the text of a battle without metadata
    assert frame["header_count_a"][0] == sum(rows[0]["conv_metadata"]["header_count_a"].values())


def test_pieces_missing_whole_keys_take_defaults(tmp_path, small_blocks):
    # The first 200 battles have only the required keys, the next 200 tags and metadata, the
    # last 200 flags as text and numbers: each 4 KiB piece infers its own schema (many lack
    # whole keys), yet the table has one, with the documented defaults.
    plain = [{"model_a": "x", "model_b": "y", "winner": "model_a"}] * 200
    tagged = [
        {
            "model_a": "y",
            "model_b": "x",
            "winner": "tie",
            "turn": 3,
            "language": "German",
            "category_tag": {"math_v0.1": {"math": True}},
            "conv_metadata": {"sum_user_tokens": 900, "bold_count_a": {"**": 2, "__": 1}},
        }
    ] * 200
    odd = [
        {"model_a": "x", "model_b": "z", "winner": "model_b", "anony": "false", "leaked": 1}
    ] * 200
    path = tmp_path / "pieces.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in plain + tagged + odd) + "\n")
    frame = load_battles(path).frame
    assert frame.height == 600
    first, middle, last = (
        frame.row(0, named=True),
        frame.row(300, named=True),
        frame.row(-1, named=True),
    )
    assert (first["turn"], first["anony"], first["language"], first["leaked"]) == (
        1,
        True,
        "unknown",
        False,
    )
    assert first["dedup_sampled"] is True and first["is_math"] is False
    assert first["is_code"] is False and first["user_tokens"] is None
    assert first["bold_count_a"] is None and first["tstamp"] is None
    assert (middle["turn"], middle["is_multi_turn"], middle["language"]) == (3, True, "German")
    assert middle["is_math"] is True and middle["is_long_query"] is True
    assert middle["bold_count_a"] == 3 and middle["bold_count_b"] is None
    assert (last["anony"], last["leaked"]) == (False, True)
    assert frame["model_b"].unique().sort().to_list() == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ('{"model_a": "x", "model_b": "y", "winner": "model_a"', "line 15001 (cut short)"),
        ('{"model_a": "x", "model_b": "y", "winner": "left"}', "at line 15001: field 'winner'"),
        ('{"model_a": "x", "winner": "tie"}', "at line 15001: missing required field 'model_b'"),
    ],
)
def test_bad_line_in_the_middle_of_a_large_file_is_named(tmp_path, monkeypatch, bad_line, expected):
    # About 1.6 MB in 64 KiB blocks: the bad line sits inside one of the later blocks.
    from arena.leaderboard import battle_stream

    monkeypatch.setattr(battle_stream, "BLOCK_BYTES", 65536)
    path = tmp_path / "large.jsonl"
    lines = [GOOD_LINE] * 15000 + [bad_line] + [GOOD_LINE] * 15000
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BadRequest) as info:
        load_battles(path)
    assert "large.jsonl" in str(info.value) and expected in str(info.value)
    assert "line 30001" not in str(info.value)


def test_bad_item_in_a_streamed_json_array_is_named(tmp_path, small_blocks):
    good = json.loads(GOOD_LINE)
    path = tmp_path / "battles.json"
    path.write_text(json.dumps([good] * 500 + [7] + [good] * 500, indent=2))
    with pytest.raises(BadRequest, match="at item 501: expected a JSON object, got a number"):
        load_battles(path)
    path.write_text(json.dumps([good] * 500, indent=2)[:-3])
    with pytest.raises(BadRequest, match="not valid JSON"):
        load_battles(path)


@pytest.mark.parametrize("block_size", [1, 2, 5, 64, 1 << 20])
def test_json_array_items_survive_any_block_boundary(block_size):
    import hashlib
    import io

    from arena.leaderboard.battle_json_array import json_array_chunks

    # Brackets, commas, escaped quotes and backslashes inside strings must not cut items.
    items = [
        {"model_a": 'say "hi", [ok]', "model_b": "back\\slash\\", "winner": "tie"},
        {"nested": [1, {"x": "}{"}], "text": "two\nlines", "q": '\\"quoted\\"'},
        {},
    ]
    for indent in (None, 2):
        raw = json.dumps(items, indent=indent).encode()
        digest = hashlib.sha256()
        chunks = list(json_array_chunks(io.BytesIO(raw), digest, block_size))
        lines = [line for chunk in chunks for line in chunk.split(b"\n") if line.strip()]
        assert [json.loads(line) for line in lines] == items
        assert digest.hexdigest() == hashlib.sha256(raw).hexdigest()

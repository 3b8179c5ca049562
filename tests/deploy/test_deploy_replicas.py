"""Two real ``arena serve`` replicas on one PostgreSQL database and Redis act as one arena:
one leaderboard, one stream per message, battles that outlive the replica streaming them,
images any replica serves, and a replica with another secret refused at start."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import create_engine, text

from arena.web.battle_access import TURN_LEASE_S
from deploy.cluster import Replica, replica_env, replicas
from support.processes import PROCESS_DEADLINE_S, process_tree, still_running, wait_until
from support.web_fakes import ArenaClient

pytestmark = [pytest.mark.deploy, pytest.mark.postgres]

SLOW_WORDS = 60


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, deploy_database_url, registry_file, redis_url) -> Iterator[list]:
    tmp = tmp_path_factory.mktemp("cluster")
    with replicas(
        tmp, 2, database_url=deploy_database_url, registry=registry_file, redis_url=redis_url
    ) as started:
        yield started


@pytest.fixture
def pair(cluster) -> list[Replica]:
    """The module's two replicas, one relaunched if an earlier test killed it."""
    for replica in cluster:
        if replica.proc is None or replica.proc.poll() is not None:
            replica.launch()
    for replica in cluster:
        replica.wait_ready()
    return cluster


@pytest.fixture
def engine(deploy_database_url):
    engine = create_engine(deploy_database_url)
    yield engine
    engine.dispose()


def client_of(replica: Replica) -> ArenaClient:
    client = ArenaClient(replica.url)
    client.start()
    return client


def same_session(client: ArenaClient, replica: Replica) -> ArenaClient:
    """A client of another replica carrying this client's session cookies."""
    other = ArenaClient(replica.url)
    for cookie in client.http.cookies.jar:
        other.http.cookies.set(cookie.name, cookie.value)
    other.csrf = client.csrf
    return other


def board(client: ArenaClient) -> dict:
    response = client.get("/api/leaderboard")
    return response.json() if response.status_code == 200 else {}


def battles_shown(data: dict) -> int:
    return sum(m.get("num_battles", 0) for m in data.get("models", []))


def counted_votes(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM votes WHERE message_id IS NULL"))


def slow_standin(standin, words: int = SLOW_WORDS, interval_s: float = 0.05) -> None:
    standin.reply = " ".join(["slowly"] * words)
    standin.token_interval_s = interval_s


def test_the_leaderboard_converges_on_both_replicas(pair, engine):
    clients = [client_of(r) for r in pair]
    for n in range(4):
        voter = clients[n % 2]  # votes land on both replicas
        battle_id = voter.new_battle()
        response, events = voter.send(battle_id, f"question {n}")
        assert response.status_code == 200 and events[-1].event == "end"
        assert voter.vote(battle_id, "a" if n % 3 else "tie").json()["counted"] is True
    expected = 2 * counted_votes(engine)  # each vote is a battle of two models
    boards: list[dict] = []

    def converged() -> bool:
        nonlocal boards
        boards = [board(c) for c in clients]
        return all(battles_shown(b) == expected for b in boards) and (
            boards[0].get("snapshot") == boards[1].get("snapshot")
        )

    # Long: the recomputing child runs at a low priority, and a loaded machine starves it.
    wait_until(
        converged,
        timeout_s=3 * PROCESS_DEADLINE_S,
        what="both replicas to show every vote on one board",
    )
    assert boards[0]["models"] == boards[1]["models"]
    for client in clients:
        client.close()


def test_the_same_message_racing_to_both_replicas_streams_once(pair, standin, engine):
    first = client_of(pair[0])
    second = same_session(first, pair[1])
    battle_id = first.new_battle()
    slow_standin(standin)  # the winner streams for seconds; the loser is refused at once
    statuses: dict[str, int] = {}
    start = threading.Barrier(2)

    def post(name: str, client: ArenaClient) -> None:
        start.wait()
        statuses[name] = client.send(battle_id, "the same message")[0].status_code

    threads = [threading.Thread(target=post, args=a) for a in (("1", first), ("2", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses.values()) == [200, 409]
    with engine.connect() as conn:
        users = conn.scalar(
            text(
                "SELECT count(*) FROM messages m JOIN conversations c ON m.conversation_id = c.id"
                " WHERE c.battle_id = :b AND m.role = 'user'"
            ),
            {"b": battle_id},
        )
    assert users == 2  # one user message per side: the turn was stored once
    standin.token_interval_s = 0.0
    assert second.vote(battle_id, "b").status_code == 200
    first.close()
    second.close()


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 140, 200)).save(buffer, "PNG")
    return buffer.getvalue()


def test_an_image_uploaded_to_one_replica_is_served_by_the_other(pair, standin):
    uploader = client_of(pair[0])
    sender = same_session(uploader, pair[1])
    upload = uploader.post("/api/images", files={"image": ("photo.png", _png(), "image/png")})
    assert upload.status_code == 201, upload.text
    image_id = upload.json()["image_id"]
    assert not (pair[1].workdir / "data" / "images").exists()

    seen = len(standin.requests)
    battle_id = sender.new_battle(vision=True)
    response, events = sender.send(battle_id, "what is in this picture?", image_id=image_id)
    assert response.status_code == 200 and events[-1].event == "end", response.text
    images = [
        part["image_url"]["url"]
        for body in standin.requests[seen:]
        for message in body["messages"]
        if isinstance(message.get("content"), list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]
    assert len(images) == 2  # both models of the battle got the picture
    prefix = "data:image/png;base64,"
    for url in images:
        assert url.startswith(prefix)
        assert hashlib.sha256(base64.b64decode(url[len(prefix) :])).hexdigest() == image_id
    uploader.close()
    sender.close()


def test_a_replica_with_another_secret_fails_fast(pair, tmp_path, registry_file, redis_url):
    env = dict(pair[0].env)
    workdir = tmp_path / "intruder"
    intruder = Replica(
        "intruder",
        workdir,
        replica_env(
            workdir,
            database_url=env["ARENA_DATABASE_URL"],
            registry=registry_file,
            redis_url=redis_url,
            secret="not-the-shared-secret",
        ),
    )
    intruder.launch()
    try:
        assert intruder.proc is not None
        wait_until(lambda: intruder.proc.poll() is not None, what="the intruder to give up")
        assert intruder.proc.returncode == 2
        log = intruder.log_tail()
        assert "refusing to start" in log
        assert "ARENA_SECRET_KEY differs from the one the database was set up with" in log
        assert "Traceback" not in log
        assert "not-the-shared-secret" not in log
    finally:
        intruder.stop()


def _lease_until(engine, battle_id: str) -> datetime | None:
    with engine.connect() as conn:
        value = conn.scalar(
            text("SELECT turn_lease_until FROM battles WHERE id = :b"), {"b": battle_id}
        )
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def test_kill_9_of_the_streaming_replica_leaves_the_battle_usable(pair, standin, engine):
    doomed, survivor = pair
    owner = client_of(doomed)
    # A vote first, so the doomed replica has started its leaderboard child process.
    warmup = owner.new_battle()
    owner.send(warmup, "warm up")
    assert owner.vote(warmup, "a").status_code == 200
    assert doomed.proc is not None
    wait_until(
        lambda: len(process_tree(doomed.proc.pid)) >= 2,
        what="the replica's leaderboard child process",
    )

    battle_id = owner.new_battle()
    slow_standin(standin, words=400, interval_s=0.1)  # streams far longer than the test
    called = len(standin.requests)
    streaming = threading.Event()

    def stream() -> None:
        try:
            with owner.http.stream(
                "POST",
                f"/api/battles/{battle_id}/messages",
                json={"text": "tell me a long story"},
                headers={"X-CSRF-Token": owner.csrf or ""},
                timeout=PROCESS_DEADLINE_S,
            ) as response:
                for _ in response.iter_bytes():
                    streaming.set()
        except httpx.HTTPError:
            pass  # the replica died mid-stream, as intended

    reader = threading.Thread(target=stream, daemon=True)
    reader.start()
    wait_until(
        lambda: streaming.is_set() and len(standin.requests) >= called + 2,
        what="both models to be streaming on the doomed replica",
    )
    tree = process_tree(doomed.proc.pid)
    assert len(tree) >= 2
    doomed.kill()
    killed_at = datetime.now(UTC)
    reader.join(timeout=PROCESS_DEADLINE_S)

    # The dead replica's lease was last renewed before the kill: it lapses within 10 s.
    lease = _lease_until(engine, battle_id)
    assert lease is not None and lease <= killed_at + timedelta(seconds=TURN_LEASE_S)
    rescuer = same_session(owner, survivor)
    view = rescuer.get(f"/api/battles/{battle_id}").json()
    refused = rescuer.send(battle_id, "cutting in")[0]
    if datetime.now(UTC) < lease:  # both answered while the dead replica's lease held
        assert view["state"] == "streaming"
        assert refused.status_code == 409, refused.text
    standin.token_interval_s = 0.0

    def failed_answers() -> bool:
        view = rescuer.get(f"/api/battles/{battle_id}").json()
        answers = view["turns"][-1]["answers"]
        return view["state"] == "ready" and len(answers) == 2 and all(a["failed"] for a in answers)

    wait_until(failed_answers, what="the unfinished turn to read as failed")
    recovered_after = datetime.now(UTC) - killed_at
    refused_vote = rescuer.vote(battle_id, "a")
    assert refused_vote.status_code == 400
    assert refused_vote.json()["error"]["code"] == "answer_failed"

    response, events = rescuer.regenerate(battle_id)
    assert response.status_code == 200 and events[-1].event == "end", response.text
    counted = rescuer.vote(battle_id, "b")
    assert counted.status_code == 200 and counted.json()["counted"] is True
    with engine.connect() as conn:
        votes = conn.scalar(
            text("SELECT count(*) FROM votes WHERE battle_id = :b"), {"b": battle_id}
        )
    assert votes == 1

    wait_until(lambda: not still_running(tree), what="every child of the killed replica to end")
    print(f"battle usable again {recovered_after.total_seconds():.1f} s after kill -9")
    owner.close()
    rescuer.close()

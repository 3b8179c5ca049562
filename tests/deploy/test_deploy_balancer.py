"""Two real replicas behind HAProxy, configured exactly as docs/deployment.md says (TLS at
the proxy, round robin without stickiness): whole battles whose requests alternate between
the replicas, each vote counted once, one leaderboard, and client addresses taken from
X-Forwarded-For only when the balancer sent it."""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import create_engine, text

from arena.battles.limits import hash_ip
from deploy.cluster import ARENA, SECRET, Balancer, Replica, haproxy, haproxy_binary, replicas
from support.processes import PROCESS_DEADLINE_S, start_process, wait_until
from support.web_fakes import ArenaClient

pytestmark = [pytest.mark.deploy, pytest.mark.postgres]

BALANCER_SOURCE = "127.0.0.2"  # replicas see the balancer here, clients at 127.0.0.1
CLIENT = "127.0.0.1"
SPOOFED = "203.0.113.7"
BATTLES = 6
WORKER_SECRET = "deploy-worker-secret"
HEARTBEAT_EXPIRY_S = 3.0
WORKER_MODEL = "balanced-upstream"


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory, deploy_database_url, registry_file, redis_url
) -> Iterator[tuple[Balancer, list[Replica]]]:
    haproxy_binary()  # skip (locally) before starting replicas for nothing
    tmp = tmp_path_factory.mktemp("deployment")
    with (
        replicas(
            tmp,
            2,
            database_url=deploy_database_url,
            registry=registry_file,
            redis_url=redis_url,
            ARENA_TRUSTED_PROXIES=BALANCER_SOURCE,
            ARENA_SECURE_COOKIES="true",
            ARENA_WORKER_SECRET=WORKER_SECRET,
            ARENA_HEARTBEAT_EXPIRY_S=str(HEARTBEAT_EXPIRY_S),
        ) as started,
        haproxy(tmp / "haproxy", started, source_address=BALANCER_SOURCE) as balancer,
    ):
        yield balancer, started


@pytest.fixture
def live(deployment) -> tuple[Balancer, list[Replica]]:
    """The deployment with every replica running and UP at the balancer (an earlier test
    may have killed one)."""
    balancer, started = deployment
    for replica in started:
        if replica.proc is None or replica.proc.poll() is not None:
            replica.launch()
    for replica in started:
        replica.wait_ready()
    wait_until(
        lambda: all(r["status"] == "UP" for r in balancer.servers().values()),
        what="the balancer to see every replica UP",
    )
    return balancer, started


@pytest.fixture
def engine(deploy_database_url):
    engine = create_engine(deploy_database_url)
    yield engine
    engine.dispose()


def through(balancer: Balancer, **headers: str) -> ArenaClient:
    client = ArenaClient(balancer.https_url, headers=headers)
    client.http.close()  # the same client, trusting the test's own certificate
    client.http = httpx.Client(
        base_url=balancer.https_url,
        timeout=30.0,
        verify=ssl.create_default_context(cafile=str(balancer.cert)),
        headers=headers,
    )
    client.start()
    assert client.csrf, "the session cookie (Secure) must come back over HTTPS"
    return client


def test_plain_http_is_redirected_to_https(live):
    balancer, _ = live
    response = httpx.get(balancer.http_url + "/leaderboard", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://")


def test_whole_battles_alternate_replicas_and_each_vote_counts_once(live, engine):
    balancer, started = live
    before = balancer.answered()
    client = through(balancer)
    battle_ids = []
    for n in range(BATTLES):
        battle_id = client.new_battle()
        response, events = client.send(battle_id, f"round robin question {n}")
        assert response.status_code == 200 and events[-1].event == "end", response.text
        assert client.get(f"/api/battles/{battle_id}").json()["state"] == "ready"
        vote = client.vote(battle_id, ["a", "b", "tie"][n % 3])
        assert vote.status_code == 200 and vote.json()["counted"] is True, vote.text
        again = client.vote(battle_id, "a")  # a retry, through the other replica or this one
        assert again.status_code == 409, again.text
        battle_ids.append(battle_id)
    after = balancer.answered()
    served = {name: after[name] - before.get(name, 0) for name in after}
    requests = 1 + BATTLES * 5
    assert sum(served.values()) == requests
    # Round robin without stickiness: both replicas took a fair share of one session.
    assert all(count >= requests // 3 for count in served.values()), served

    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT battle_id, count(*) FROM votes WHERE message_id IS NULL"
                " AND battle_id = ANY(:ids) GROUP BY battle_id"
            ),
            {"ids": battle_ids},
        ).all()
        total = conn.scalar(text("SELECT count(*) FROM votes WHERE message_id IS NULL"))
    assert sorted(rows) == sorted((b, 1) for b in battle_ids)

    seen: list[object] = []

    def one_board_with_every_vote() -> bool:
        boards = [client.get("/api/leaderboard") for _ in range(2)]  # likely both replicas
        seen[:] = [(b.status_code, b.text[:300]) for b in boards]
        data = [b.json() for b in boards if b.status_code == 200]
        return len(data) == 2 and all(
            sum(m["num_battles"] for m in d["models"]) == 2 * total for d in data
        )

    try:
        # Long: the recomputing child runs at a low priority, and a loaded machine starves it.
        wait_until(
            one_board_with_every_vote,
            timeout_s=3 * PROCESS_DEADLINE_S,
            what="the board to count every vote",
        )
    except AssertionError as e:
        logs = "\n".join(r.log_tail() for r in started)
        raise AssertionError(f"{e}; last answers {seen}; replica logs:\n{logs}") from None
    client.close()


def _stored_ip_hash(engine, battle_id: str) -> str:
    """The hashed address the battle's session was started from."""
    with engine.connect() as conn:
        return conn.scalar(
            text(
                "SELECT s.ip_hash FROM battles b JOIN arena_sessions s ON b.session_id = s.id"
                " WHERE b.id = :b"
            ),
            {"b": battle_id},
        )


def test_client_addresses_come_from_the_balancer_only(live, engine):
    balancer, started = live
    expected = hash_ip(CLIENT, SECRET)
    # Through the balancer, a forged header is dropped and the client's own address used.
    forger = through(balancer, **{"X-Forwarded-For": SPOOFED})
    battle_id = forger.new_battle()
    assert _stored_ip_hash(engine, battle_id) == expected
    assert expected != hash_ip(BALANCER_SOURCE, SECRET)
    forger.close()
    # Straight to a replica, the same header is not believed: the peer is no proxy.
    with httpx.Client(base_url=started[0].url, headers={"X-Forwarded-For": SPOOFED}) as direct:
        response = direct.get("/api/session")
        assert response.status_code == 200
        # Secure cookies do not go back over plain HTTP by themselves: send them by hand.
        cookies = {c.name: c.value for c in response.cookies.jar}
        created = direct.post(
            "/api/battles",
            json={},
            headers={
                "X-CSRF-Token": cookies["arena_csrf"],
                "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            },
        )
    assert created.status_code == 201, created.text
    assert _stored_ip_hash(engine, created.json()["battle_id"]) == expected


def _newest_heartbeat(engine) -> datetime | None:
    with engine.connect() as conn:
        value = conn.scalar(
            text("SELECT max(last_heartbeat_at) FROM workers WHERE worker_id = :w"),
            {"w": "balanced-worker"},
        )
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def _lists_worker_model(replica: Replica) -> bool:
    try:
        response = httpx.get(replica.url + "/v1/models", timeout=10)
    except httpx.HTTPError:
        return False
    return WORKER_MODEL in {m["id"] for m in response.json().get("data", [])}


def test_a_worker_registered_through_the_balancer_outlives_a_replica(
    live, engine, standin, tmp_path
):
    balancer, started = live
    env = {
        **os.environ,
        "ARENA_WORKER_SECRET": WORKER_SECRET,
        "SSL_CERT_FILE": str(balancer.cert),  # the worker trusts the balancer's certificate
    }
    log = tmp_path / "worker.log"
    with log.open("ab") as out:
        worker = start_process(
            [
                ARENA,
                "worker",
                "--upstream",
                f"{standin.url}/v1",
                "--upstream-model",
                "standin-model",
                "--name",
                WORKER_MODEL,
                "--worker-id",
                "balanced-worker",
                "--gateway",
                balancer.https_url,
                "--heartbeat-interval",
                "0.5",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    tls = ssl.create_default_context(cafile=str(balancer.cert))

    def answers_through_balancer() -> bool:
        response = httpx.post(
            balancer.https_url + "/v1/chat/completions",
            json={"model": WORKER_MODEL, "messages": [{"role": "user", "content": "hi"}]},
            verify=tls,
            timeout=30,
        )
        return response.status_code == 200 and bool(
            response.json()["choices"][0]["message"]["content"]
        )

    try:
        wait_until(
            lambda: all(_lists_worker_model(r) for r in started),
            what=f"both replicas to list the worker's model (log: {log})",
        )
        assert answers_through_balancer()

        doomed = started[0]
        doomed.kill()
        killed_at = datetime.now(UTC)
        wait_until(
            lambda: balancer.servers()["arena-1"]["status"].startswith("DOWN"),
            what="the balancer to mark the killed replica DOWN",
        )
        # Heartbeats keep arriving through the balancer for longer than the expiry...
        wait_until(
            lambda: (
                (beat := _newest_heartbeat(engine)) is not None
                and beat > killed_at + timedelta(seconds=HEARTBEAT_EXPIRY_S)
            ),
            what="heartbeats after the kill, past the expiry",
        )
        # ...so the model never left the survivor's list, and calls through the balancer work.
        assert _lists_worker_model(started[1])
        for _ in range(4):
            assert answers_through_balancer()
        assert worker.poll() is None, log.read_text()[-3000:]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=PROCESS_DEADLINE_S)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

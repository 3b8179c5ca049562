"""Property-based fuzzing of a real ``arena serve`` app through its own OpenAPI schema.

Schemathesis reads ``/openapi.json`` from a server on loopback (demo models answering at
full speed, SQLite in a temporary folder) and sends every ``/api`` and ``/v1`` operation
generated requests, valid and invalid, a bounded number per operation. Every answer must
pass three checks: no 5xx, a body that matches the documented response schema, and a
documented content type.

The arena API needs a session cookie and a CSRF token on every POST: the fuzzer's HTTP
session gets both from ``GET /api/session``, so generated requests pass the CSRF check and
reach validation and the arena itself. Random battle ids only ever find nothing, so a
share of the cases that take one is pointed at a real battle instead: a fresh one, or one
whose first turn has been answered (so votes can succeed). The test then asserts that the
fuzzing got past the front door: each operation answered at least once with a 2xx.
"""

from __future__ import annotations

import collections
import io
import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from arena.config import Settings
from arena.leaderboard.artifacts import write_artifact_set
from arena.leaderboard.table import Leaderboard, ModelRow
from arena.providers.registry import RegistryFile, demo_specs
from arena.server import create_server_app
from support.servers import serve_app

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Per operation and generation mode (valid, invalid): bounded, so the whole module stays
# within a couple of minutes on a loaded two-core machine; raise it for a deeper local run.
EXAMPLES = int(os.environ.get("ARENA_FUZZ_EXAMPLES", "40"))
UNLIMITED = "1000000/minute"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # no example database: every run draws afresh (failures print a seed)
    phases=[Phase.explicit, Phase.generate],  # no shrinking: report the failing case as is
    suppress_health_check=list(HealthCheck),
    # CI draws the same cases every run (a landing never hinges on a lucky draw); local runs
    # draw afresh and print the seed of a failure.
    derandomize=bool(os.environ.get("CI")),
    print_blob=False,
)


@dataclass
class FuzzServer:
    url: str
    http: requests.Session
    csrf_token: str
    schema: Any
    models: list[str]
    image_id: str
    challenge: str
    statuses: dict[str, collections.Counter[int]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )

    def new_battle(self) -> str:
        response = self.http.post(
            self.url + "/api/battles",
            json={"mode": "battle"},
            headers={"X-CSRF-Token": self.csrf_token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["battle_id"]

    def new_round(self) -> str:
        """A fresh red-team round of one of the demo challenges."""
        response = self.http.post(
            self.url + "/api/redteam/rounds",
            json={"challenge_id": self.challenge},
            headers={"X-CSRF-Token": self.csrf_token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["round_id"]

    def answered_battle(self) -> str:
        battle_id = self.new_battle()
        with self.http.post(
            f"{self.url}/api/battles/{battle_id}/messages",
            json={"text": "Tell me about rivers."},
            headers={"X-CSRF-Token": self.csrf_token},
            stream=True,
            timeout=30,
        ) as response:
            response.raise_for_status()
            for _ in response.iter_content(chunk_size=None):
                pass
        return battle_id

    def shared_battle(self) -> str:
        """The share token of an answered battle that has its vote."""
        battle_id = self.answered_battle()
        response = self.http.post(
            f"{self.url}/api/battles/{battle_id}/vote",
            json={"vote": "tie"},
            headers={"X-CSRF-Token": self.csrf_token},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["share_url"].rsplit("/", 1)[-1]


def _demo_registry() -> RegistryFile:
    """The built-in demo models, answering without the pacing that makes them look real;
    two of them see images, so vision battles can be drawn (with one, "not enough models"
    is a correct 503)."""
    specs = [
        spec.model_copy(
            update={
                "params": {**spec.params, "tokens_per_s": 0},
                "capabilities": sorted({*spec.capabilities, "vision"})
                if i < 2
                else spec.capabilities,
            }
        )
        for i, spec in enumerate(demo_specs())
    ]
    return RegistryFile(models=specs)


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _leaderboard(folder: Path, models: list[str]) -> None:
    rows = tuple(
        ModelRow(name, 1100.0 - 10 * i, 1080.0 - 10 * i, 1120.0 - 10 * i, i + 1, 50, 25, 20, 5)
        for i, name in enumerate(models)
    )
    board = Leaderboard("full", False, rows, {}, {"counts": {"battles_rated": 50}})
    write_artifact_set(folder, [board], snapshot="fuzz")


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    tmp = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'arena.db'}",
        secret_key="fuzz-secret",
        requests_per_session=UNLIMITED,
        requests_per_ip=UNLIMITED,
        votes_per_session=UNLIMITED,
        votes_per_ip=UNLIMITED,
        uploads_per_session=UNLIMITED,
        uploads_per_ip=UNLIMITED,
        leaderboard_refresh_s=3600,
        leaderboard_rounds=10,
        health_interval_s=3600,
        request_timeout_s=30,
        first_token_timeout_s=10,
        stream_idle_timeout_s=10,
        max_request_bytes=256 * 1024,
    )
    registry = _demo_registry()
    _leaderboard(config.data_dir / "leaderboard", [s.name for s in registry.models])
    app = create_server_app(config, registry)
    with serve_app(app) as url, requests.Session() as http:
        token = http.get(url + "/api/session", timeout=10).json()["csrf_token"]
        uploaded = http.post(
            url + "/api/images",
            files={"image": ("dot.png", _png(), "image/png")},
            headers={"X-CSRF-Token": token},
            timeout=10,
        )
        uploaded.raise_for_status()
        document = httpx.get(url + "/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        schema.config.update(base_url=url)
        models = [s.name for s in registry.models]
        challenges = http.get(url + "/api/redteam/challenges", timeout=10).json()["challenges"]
        challenge = challenges[0]["id"]  # the demo challenges: only demo models run
        yield FuzzServer(url, http, token, schema, models, uploaded.json()["image_id"], challenge)


def _steer(server: FuzzServer) -> Callable[[schemathesis.Case], None]:
    """Point two cases in three at things that exist: a real battle (fresh, or with an
    answered turn) for ``battle_id``, a fresh red-team round for ``round_id``, a served
    model for ``model``, a challenge for ``challenge_id``; the third keeps its generated
    values, which mostly find nothing."""
    kinds = itertools.cycle(["generated", "fresh", "answered"])

    def steer(case: schemathesis.Case) -> None:
        kind = next(kinds)
        if kind == "generated":
            return
        path = case.path_parameters or {}
        if "battle_id" in path:
            path["battle_id"] = server.new_battle() if kind == "fresh" else server.answered_battle()
        if "round_id" in path:
            path["round_id"] = server.new_round()
        if "model" in path:
            path["model"] = server.models[0]
        if "token" in path:
            path["token"] = server.shared_battle()
        body = case.body if isinstance(case.body, dict) else {}
        if isinstance(body.get("model"), str):
            body["model"] = server.models[len(body["model"]) % len(server.models)]
        if isinstance(body.get("models"), list) and 1 <= len(body["models"]) <= 2:
            body["models"] = server.models[: len(body["models"])]
        if isinstance(body.get("image_id"), str):
            body["image_id"] = server.image_id
        if isinstance(body.get("challenge_id"), str):
            body["challenge_id"] = server.challenge

    return steer


def _fuzz_operation(server: FuzzServer, operation: Any, mode: GenerationMode) -> None:
    steer = _steer(server)

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        steer(case)
        response = case.call(
            session=server.http, headers={"X-CSRF-Token": server.csrf_token}, timeout=60
        )
        server.statuses[operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    run()


def _fuzz(server: FuzzServer, path_regex: str) -> list[str]:
    """Fuzz every operation under ``path_regex``; the failures found, one line each."""
    failures: list[str] = []
    operations = [r.ok() for r in server.schema.include(path_regex=path_regex).get_all_operations()]
    assert operations, f"no operation matches {path_regex}"
    for operation, mode in itertools.product(operations, GenerationMode):
        try:
            _fuzz_operation(server, operation, mode)
        except Unsatisfiable:
            # Nothing in this operation can be made invalid (no parameters, or a free-form
            # string path parameter): there are no negative cases to send.
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as e:  # one failure must not hide the others
            failures.append(f"{operation.label} ({mode.value}): {_describe(e)}")
    return failures


def _describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in error.exceptions) + f"\n{error}"
    return f"{type(error).__name__}: {error}"


def _coverage(server: FuzzServer, prefix: str) -> str:
    return "\n".join(
        f"  {label}: {dict(sorted(counts.items()))}"
        for label, counts in sorted(server.statuses.items())
        if label.split(" ", 1)[1].startswith(prefix)
    )


def _reached(server: FuzzServer, prefix: str) -> dict[str, bool]:
    return {
        label: any(200 <= status < 300 for status in counts)
        for label, counts in server.statuses.items()
        if label.split(" ", 1)[1].startswith(prefix)
    }


def test_fuzz_arena_api(fuzz_server: FuzzServer) -> None:
    failures = _fuzz(fuzz_server, r"^/api/")
    report = _coverage(fuzz_server, "/api/")
    print("statuses per operation (/api):\n" + report)
    assert not failures, "\n\n".join(failures) + "\n\nstatuses:\n" + report
    unreached = [label for label, ok in _reached(fuzz_server, "/api/").items() if not ok]
    assert not unreached, f"never answered with a 2xx: {unreached}\n{report}"


def test_fuzz_openai_api(fuzz_server: FuzzServer) -> None:
    failures = _fuzz(fuzz_server, r"^/v1/")
    report = _coverage(fuzz_server, "/v1/")
    print("statuses per operation (/v1):\n" + report)
    assert not failures, "\n\n".join(failures) + "\n\nstatuses:\n" + report
    unreached = [label for label, ok in _reached(fuzz_server, "/v1/").items() if not ok]
    assert not unreached, f"never answered with a 2xx: {unreached}\n{report}"

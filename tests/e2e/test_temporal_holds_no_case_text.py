"""With CONCORDAT_CIPHER_KEY set, a case driven through `concordat up` (Temporal's real dev server) leaves
its text nowhere in the data dir but the views: not in the event store, not in Temporal's own database,
not in a log. Temporal's history, read by a client without the codec (as Temporal's UI and CLI read
it), holds ciphertext; the engine's client reads it. And everything in the data dir is 0700/0600."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr
from temporalio.client import Client

from concordat import bootstrap
from concordat.settings import Settings
from tests.e2e.conftest import Engine, _env, free_port, running_engine
from workflows.contracts import ActInput, CaseInput

KEY = AESCipher.create_key(32)
TITLE = "Qv7 redesign of the Fenland stroke pathway"
NOTE = "Wx3 the chair asked that this stays private"
MINUTES = "JCU-Zk9-MINUTES"
SECRETS = (TITLE, NOTE, MINUTES)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("keyed")
    env = {**_env(tmp, free_port()), "CONCORDAT_CIPHER_KEY": KEY}
    with running_engine(tmp, env) as engine:
        yield engine


@pytest.fixture(scope="module")
def reference(keyed: Engine) -> str:
    ref = keyed.ok(
        "proposal",
        "start",
        "--title",
        TITLE,
        "--kind",
        "pathway_change",
        "--value",
        "120000",
        "--parties",
        "PCC,CCC",
        who="jcu_lead:jo",
    ).split()[0]
    keyed.ok(
        "decide", ref, "--stage", "jcu", "--outcome", "refer", "--note", NOTE, "--minutes-ref", MINUTES,
        who="lead_director:dan",
    )  # fmt: skip
    assert TITLE in keyed.ok("list", who="auditor:audrey")  # the views are written (and they hold the title)
    return ref


def settings(engine: Engine) -> Settings:
    return Settings(
        data_dir=Path(engine.env["CONCORDAT_DATA_DIR"]),
        temporal_address=engine.env["CONCORDAT_TEMPORAL_ADDRESS"],
        cipher_key=SecretStr(KEY),
    )


def test_no_file_in_the_data_dir_but_the_views_holds_case_text(keyed: Engine, reference: str) -> None:
    data = Path(keyed.env["CONCORDAT_DATA_DIR"])
    files = [p for p in data.rglob("*") if p.is_file()]
    assert data / "temporal.sqlite" in files and data / "events.sqlite" in files
    holding = {
        str(path.relative_to(data)): [s for s in SECRETS if s.encode() in path.read_bytes()]
        for path in files
        if any(s.encode() in path.read_bytes() for s in SECRETS)
    }
    assert holding, "the views hold the title: if nothing does, this test reads nothing"
    assert {name for name in holding if not name.startswith("views/")} == set(), holding


async def _history_payloads(client: Client, reference: str) -> tuple[bytes, list[object]]:
    """The history's bytes as Temporal keeps it, and its start input and first update decoded by `client`."""
    history = await client.get_workflow_handle(reference).fetch_history()
    raw = b"".join(event.SerializeToString() for event in history.events)
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads
    update = next(
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    )
    decoded = [
        *(await client.data_converter.decode(list(started), [CaseInput])),
        *(await client.data_converter.decode(list(update), [ActInput])),
    ]
    return raw, decoded


def test_temporals_history_is_ciphertext_without_the_codec_and_reads_with_it(keyed: Engine, reference: str) -> None:
    address = keyed.env["CONCORDAT_TEMPORAL_ADDRESS"]

    async def read() -> tuple[bytes, list[bytes], list[object]]:
        plain = await Client.connect(address)  # as Temporal's UI and CLI see it: no codec
        history = await plain.get_workflow_handle(reference).fetch_history()
        encodings = [
            p.metadata.get("encoding", b"")
            for e in history.events
            if e.HasField("workflow_execution_started_event_attributes")
            for p in e.workflow_execution_started_event_attributes.input.payloads
        ]
        raw = b"".join(event.SerializeToString() for event in history.events)
        _, decoded = await _history_payloads(await bootstrap.connect(settings(keyed)), reference)
        return raw, encodings, decoded

    raw, encodings, decoded = asyncio.run(read())
    assert encodings == [b"binary/encrypted"]
    for text in (*SECRETS, "lead_director", "pathway_change"):
        assert text.encode() not in raw, text
    started, update = decoded
    assert isinstance(started, CaseInput) and started.state.title == TITLE
    assert isinstance(update, ActInput) and update.fields["note"] == NOTE and update.actor.id == "dan"


def test_temporals_ui_is_off_unless_asked_for(keyed: Engine) -> None:
    assert any("(no web UI)" in line for line in keyed.lines)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", int(keyed.env["CONCORDAT_TEMPORAL_UI_PORT"]))) != 0


@pytest.mark.parametrize(
    ("args", "setting"), [(("--temporal-ui",), {}), ((), {"CONCORDAT_TEMPORAL_UI": "true"})], ids=["flag", "setting"]
)
def test_asked_for_it_serves_the_ui_on_127_0_0_1_and_the_ui_shows_ciphertext(
    tmp_path: Path, args: tuple[str, ...], setting: dict[str, str]
) -> None:
    env = {**_env(tmp_path, free_port()), "CONCORDAT_CIPHER_KEY": KEY, **setting}
    with running_engine(tmp_path, env, args) as engine:
        port = engine.env["CONCORDAT_TEMPORAL_UI_PORT"]
        assert any(f"web UI http://127.0.0.1:{port}, no sign-in" in line for line in engine.lines)
        ref = engine.ok(
            "proposal", "start", "--title", TITLE, "--kind", "procurement", "--value", "1", "--parties", "PCC",
            who="jcu_lead:jo",
        ).split()[0]  # fmt: skip
        # What a browser on the UI gets: the history as JSON, payloads as base64.
        url = f"http://127.0.0.1:{port}/api/v1/namespaces/default/workflows/{ref}/history"
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - our own server
            history = json.loads(answer.read())
    started = history["history"]["events"][0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"]
    assert [base64.b64decode(p["metadata"]["encoding"]) for p in started] == [b"binary/encrypted"]
    assert all(TITLE.encode() not in base64.b64decode(p["data"]) for p in started)


def test_a_store_without_the_key_is_refused_at_a_temporal_that_serves_an_encrypted_one(
    keyed: Engine, tmp_path: Path
) -> None:
    address = keyed.env["CONCORDAT_TEMPORAL_ADDRESS"]
    for other_key in ("", AESCipher.create_key(32)):
        env = {**_env(tmp_path / (other_key[:4] or "plain"), free_port()), "CONCORDAT_CIPHER_KEY": other_key}
        done = subprocess.run(
            [sys.executable, "-m", "concordat", "up", "--temporal", address],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, (done.stdout, done.stderr)
        (line,) = done.stderr.strip().splitlines()
        assert "serves another store, one whose cipher key this process does not have" in line
        assert "CONCORDAT_TEMPORAL_NAMESPACE" in line


def test_everything_in_the_data_dir_is_its_owners_alone(keyed: Engine, reference: str) -> None:
    data = Path(keyed.env["CONCORDAT_DATA_DIR"])
    loose = {}
    for path in [data, *data.rglob("*")]:
        if path.is_symlink() or not path.exists():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            loose[str(path.relative_to(data))] = oct(mode)
    assert (data / "temporal.sqlite").exists() and os.listdir(data / "logs")
    assert loose == {}

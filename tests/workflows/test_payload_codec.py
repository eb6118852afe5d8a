"""Temporal's payloads under the cipher key (`concordat.codec`): what is sent is ciphertext naming its
key; it reads back; a payload under a key this process lacks is refused in one line; payloads from
before the key pass through; and a workflow started before a key rotation carries on after it, on
Temporal's time-skipping test server with the real worker and store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from concordat import bootstrap, codec, keys
from concordat.settings import Settings
from domain.actor import Actor
from domain.application import CaseService
from domain.errors import InvalidInputError
from tests import proving
from workers.activities import CaseActivities, case_state
from workflows.case import ALL_WORKFLOWS, CaseWorkflow
from workflows.contracts import ActInput, ActorRef, CaseInput, CaseState
from workflows.store_binding import StoreBindingWorkflow

TITLE = "Confidential: redesign of the Fenland stroke pathway"
OLD, NEW = AESCipher.create_key(32), AESCipher.create_key(16)
DAN = ActorRef(id="dan", role="lead_director")


def keyed(key: str = "", previous: str = "") -> Settings:
    return Settings(cipher_key=SecretStr(key), previous_cipher_keys=SecretStr(previous))


def state(title: str = TITLE) -> CaseState:
    return CaseState(reference="PRO-2026-0001", title=title, status="open", stage="jcu", stage_seq=1, version=1)


async def test_every_payload_is_sent_as_ciphertext_naming_its_key_and_reads_back() -> None:
    converter = bootstrap.data_converter(keyed(OLD))
    [sent] = await converter.encode([state()])
    assert sent.metadata["encoding"] == b"binary/encrypted"
    assert sent.metadata["encryption-key-id"].decode() == keys.fingerprint(codec.payload_key(OLD))
    assert TITLE.encode() not in sent.SerializeToString()
    assert b"jcu" not in sent.data
    [again] = await converter.encode([state()])
    assert again.data != sent.data  # a fresh nonce each time
    assert await converter.decode([sent], [CaseState]) == [state()]


async def test_failure_messages_are_encrypted_too() -> None:
    converter = bootstrap.data_converter(keyed(OLD))
    assert converter.failure_converter_class is DefaultFailureConverterWithEncodedAttributes
    from temporalio.api.failure.v1 import Failure

    failure = Failure()
    await converter.encode_failure(ApplicationError(f"{TITLE} may not be decided", type="NotAllowedError"), failure)
    assert TITLE.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert isinstance(decoded, ApplicationError) and TITLE in decoded.message


async def test_without_a_key_payloads_are_pydantic_json_as_before_and_encrypted_ones_refused() -> None:
    plain = bootstrap.data_converter(keyed())
    assert await plain.encode([state()]) == await pydantic_data_converter.encode([state()])
    assert plain.failure_converter_class is pydantic_data_converter.failure_converter_class
    [sent] = await bootstrap.data_converter(keyed(OLD)).encode([state()])
    with pytest.raises(codec.PayloadKeyError, match="it has no key: CONCORDAT_CIPHER_KEY is empty"):
        await plain.decode([sent], [CaseState])


async def test_a_payload_under_another_key_is_refused_in_one_line_naming_the_key() -> None:
    [sent] = await bootstrap.data_converter(keyed(OLD)).encode([state()])
    other = codec.EncryptionCodec(codec.payload_key(NEW))
    old_id = keys.fingerprint(codec.payload_key(OLD))
    with pytest.raises(
        codec.PayloadKeyError, match=f"encrypted under key {old_id}, which this process does not"
    ) as err:
        await other.decode([sent])
    assert "\n" not in str(err.value) and "CONCORDAT_PREVIOUS_CIPHER_KEYS" in str(err.value)
    with pytest.raises(codec.PayloadKeyError, match="it has no key"):
        await codec.EncryptionCodec(None).decode([sent])


async def test_an_altered_ciphertext_is_refused() -> None:
    mine = codec.EncryptionCodec(codec.payload_key(OLD))
    [sent] = await mine.encode([Payload(data=b'"x"', metadata={"encoding": b"json/plain"})])
    altered = Payload(data=sent.data[:-1] + bytes([sent.data[-1] ^ 1]), metadata=dict(sent.metadata))
    with pytest.raises(codec.PayloadKeyError, match="altered"):
        await mine.decode([altered])


async def test_payloads_written_before_the_key_pass_through() -> None:
    [plain] = await pydantic_data_converter.encode([state()])
    assert await bootstrap.data_converter(keyed(OLD)).decode([plain], [CaseState]) == [state()]


async def test_after_a_rotation_the_previous_key_still_reads_and_only_the_new_one_writes() -> None:
    [old] = await bootstrap.data_converter(keyed(OLD)).encode([state()])
    rotated = bootstrap.data_converter(keyed(NEW, previous=f" {OLD} ,"))
    assert await rotated.decode([old], [CaseState]) == [state()]
    [new] = await rotated.encode([state()])
    assert new.metadata["encryption-key-id"].decode() == keys.fingerprint(codec.payload_key(NEW))
    with pytest.raises(codec.PayloadKeyError):
        await bootstrap.data_converter(keyed(OLD)).decode([new], [CaseState])


def test_a_key_that_is_not_base64_of_16_24_or_32_bytes_is_refused_in_one_line() -> None:
    with pytest.raises(InvalidInputError, match="CONCORDAT_CIPHER_KEY: not base64"):
        bootstrap.data_converter(keyed("not a key!"))
    with pytest.raises(InvalidInputError, match="CONCORDAT_PREVIOUS_CIPHER_KEYS: 5 bytes; it must be 16, 24 or 32"):
        bootstrap.data_converter(keyed(NEW, previous="aGVsbG8="))


def test_the_payload_key_is_derived_not_the_cipher_key_itself() -> None:
    derived = codec.payload_key(OLD)
    assert len(derived) == 32 and derived != AESCipher.create_key(32)
    raw = __import__("base64").b64decode(OLD)
    assert derived != raw and derived == keys.derive(raw, "concordat temporal payloads v1")
    AESGCM(derived)  # a valid AES-256 key


# --- a running workflow survives a key rotation -----------------------------------------------------


def _client(env: WorkflowEnvironment, settings: Settings) -> Client:
    """A client of the same test server, converting payloads as a process with `settings` does."""
    return Client(
        env.client.service_client, namespace=env.client.namespace, data_converter=bootstrap.data_converter(settings)
    )


@asynccontextmanager
async def _worker(client: Client, app: CaseService, task_queue: str) -> AsyncIterator[None]:
    """The engine's worker, without a workflow cache: the next worker then gets the workflow's next
    task at once (not after the test server's sticky-queue timeout) and replays its whole history."""
    activities = CaseActivities(app, command_key=proving.TEST_COMMAND_KEY)
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[*ALL_WORKFLOWS, StoreBindingWorkflow],
            activities=activities.all(),
            activity_executor=executor,
            max_cached_workflows=0,
        )
        async with worker:
            yield


async def test_a_workflow_started_under_the_old_key_carries_on_after_a_rotation(
    time_skipping_env: WorkflowEnvironment, sqlite_settings: Settings
) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    queue = f"tq-{uuid.uuid4()}"
    before = _client(time_skipping_env, keyed(OLD))
    after = _client(time_skipping_env, keyed(NEW, previous=OLD))
    now = await time_skipping_env.get_current_time()
    started = app.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        command_id="rotate-1",
        at=now,
        title=TITLE,
        kind="pathway_change",
        value_pence=12_000_000,
        parties=["PCC", "CCC"],
        public_health=False,
    )
    async with _worker(before, app, queue):
        handle = await before.start_workflow(
            CaseWorkflow.run,
            CaseInput(reference=started.reference, state=case_state(started)),
            id=started.reference,
            task_queue=queue,
        )
        assert (await handle.query(CaseWorkflow.state)).title == TITLE
    # The history so far is under the old key only.
    history = await after.get_workflow_handle(started.reference).fetch_history()
    assert TITLE.encode() not in history.to_json().encode()

    # Rotated: a new worker, which has never seen this workflow, replays its history and takes a decision.
    async with _worker(after, app, queue):
        decided = await asyncio.wait_for(
            proving.send(
                after.get_workflow_handle(started.reference),
                ActInput(actor=DAN, action="decide", fields={"stage": "jcu", "outcome": "refer"}),
                at=await time_skipping_env.get_current_time(),
            ),
            timeout=60,
        )
    assert decided.stage == "board" and decided.title == TITLE

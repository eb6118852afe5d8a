"""Temporal over TLS and mTLS, with an API key: the CONCORDAT_TEMPORAL_TLS_* and
CONCORDAT_TEMPORAL_API_KEY settings reach the client, tried against the engine's Temporal behind a
TLS front (tests/e2e/tls_proxy.py; the bundled dev server serves no TLS itself)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from concordat import bootstrap
from tests.e2e.conftest import Engine, running_engine
from tests.e2e.tls_proxy import Certificates, TLSProxy, make_certificates
from tests.people import settings_of


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(tmp_path_factory.mktemp("tls")) as running:
        yield running


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def temporal(engine: Engine) -> tuple[str, int]:
    host, _, port = engine.env["CONCORDAT_TEMPORAL_ADDRESS"].rpartition(":")
    return host, int(port)


def health(engine: Engine, **settings: str) -> tuple[int, dict[str, object]]:
    env = {**engine.env, **{f"CONCORDAT_{k.upper()}": v for k, v in settings.items()}}
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "health", "worker", "--json", "--timeout", "15"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout or "{}") if done.stdout.strip().startswith("{") else {}


def test_a_worker_reaches_temporal_over_mtls_with_its_client_certificate(
    engine: Engine, certificates: Certificates
) -> None:
    with TLSProxy(temporal(engine), certificates, require_client_certificate=True) as proxy:
        code, answer = health(
            engine,
            temporal_address=f"127.0.0.1:{proxy.port}",
            temporal_tls_ca_file=str(certificates.ca),
            temporal_tls_cert_file=str(certificates.client_cert),
            temporal_tls_key_file=str(certificates.client_key),
        )
        assert code == 0 and answer["healthy"] is True, answer
        assert "concordat worker" in proxy.clients  # it came through TLS, with its certificate

        code, answer = health(
            engine, temporal_address=f"127.0.0.1:{proxy.port}", temporal_tls_ca_file=str(certificates.ca)
        )
        assert code == 1 and answer["healthy"] is False  # no client certificate: refused


def test_plain_gRPC_is_not_spoken_to_a_TLS_server_and_an_unknown_CA_is_not_trusted(
    engine: Engine, certificates: Certificates, tmp_path: Path
) -> None:
    other = make_certificates(tmp_path)
    with TLSProxy(temporal(engine), certificates, require_client_certificate=False) as proxy:
        address = f"127.0.0.1:{proxy.port}"
        assert health(engine, temporal_address=address, temporal_tls_ca_file=str(certificates.ca))[0] == 0
        assert health(engine, temporal_address=address)[0] == 1  # TLS not asked for
        assert health(engine, temporal_address=address, temporal_tls_ca_file=str(other.ca))[0] == 1


async def test_the_api_key_is_sent_and_implies_tls(engine: Engine, certificates: Certificates) -> None:
    with TLSProxy(temporal(engine), certificates, require_client_certificate=False) as proxy:
        settings = settings_of(
            {
                **engine.env,
                "CONCORDAT_TEMPORAL_ADDRESS": f"127.0.0.1:{proxy.port}",
                "CONCORDAT_TEMPORAL_API_KEY": "an-api-key",
                "CONCORDAT_TEMPORAL_TLS_SERVER_NAME": "localhost",
                "CONCORDAT_TEMPORAL_TLS_CA_FILE": str(certificates.ca),
            }
        )
        client = await bootstrap.connect(settings)
        assert client.api_key == "an-api-key"
        assert await client.workflow_service.get_system_info(GetSystemInfoRequest()) is not None
        assert proxy.clients  # over TLS
    assert bootstrap.temporal_tls(settings_of({"CONCORDAT_TEMPORAL_API_KEY": "k"})) is True


def test_a_missing_certificate_file_is_one_line_and_exit_2(engine: Engine, tmp_path: Path) -> None:
    env = {**engine.env, "CONCORDAT_TEMPORAL_TLS_CA_FILE": str(tmp_path / "nowhere.pem")}
    done = subprocess.run(
        [sys.executable, "-m", "concordat", "list"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"concordat: setting CONCORDAT_TEMPORAL_TLS_CA_FILE: Value error, '{tmp_path / 'nowhere.pem'}' is not a "
        "readable file (give the path of a PEM file)"
    ]

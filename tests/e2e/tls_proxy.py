"""A TLS front for a plain Temporal dev server (the bundled dev server serves no TLS itself): a
certificate authority, a server certificate for 127.0.0.1 and a client certificate made here, and a
proxy that terminates TLS (HTTP/2 by ALPN, as gRPC needs), optionally requires a client certificate
(mTLS), and passes the bytes on. Only on 127.0.0.1."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_certificates(where: Path) -> Certificates:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("concordat test CA"))
        .issuer_name(_name("concordat test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    def issue(common: str, server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    paths = Certificates(*(where / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")))
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server_cert, server_key = issue("localhost", server=True)
    client_cert, client_key = issue("concordat worker", server=False)
    paths.server_cert.write_bytes(server_cert)
    paths.server_key.write_bytes(server_key)
    paths.client_cert.write_bytes(client_cert)
    paths.client_key.write_bytes(client_key)
    return paths


@dataclass
class TLSProxy:
    """TLS on 127.0.0.1:`port`, passed on in plain to `target`. `clients` are the client certificates'
    common names of the connections it accepted (empty strings without one)."""

    target: tuple[str, int]
    certificates: Certificates
    require_client_certificate: bool
    port: int = 0
    clients: list[str] = field(default_factory=list)

    def __enter__(self) -> TLSProxy:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificates.server_cert, self.certificates.server_key)
        context.set_alpn_protocols(["h2"])
        if self.require_client_certificate:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.certificates.ca)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peer = writer.get_extra_info("peercert") or {}
            self.clients.append(next((v for rdn in peer.get("subject", ()) for k, v in rdn if k == "commonName"), ""))
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

        async def serve() -> None:
            self._server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
            self.port = self._server.sockets[0].getsockname()[1]
            started.set()

        self._loop.set_exception_handler(lambda loop, ctx: None)  # refused handshakes are the point, not noise
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        assert started.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

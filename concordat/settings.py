"""Settings: the only reader of the environment. Every variable has the prefix `CONCORDAT_`.

Every command reads the same settings, so each finds the engine that `concordat up` started with the
same environment (by default: the data directory `./.concordat` and Temporal on 127.0.0.1:7233).
"""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.identity import EMAIL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONCORDAT_", extra="ignore")

    data_dir: Path = Field(Path(".concordat"), description="Where the SQLite store, views and Temporal's state live.")
    database_url: str = Field(
        "", description="Empty: the SQLite file in the data dir. postgresql://user:pass@host:port/db: PostgreSQL."
    )
    temporal_address: str = Field("127.0.0.1:7233", description="Temporal frontend, HOST:PORT.")
    temporal_namespace: str = "default"
    temporal_tls: bool = Field(
        False,
        description="Connect to Temporal over TLS, trusting the system's roots (on by itself when any "
        "CONCORDAT_TEMPORAL_TLS_* file or CONCORDAT_TEMPORAL_API_KEY is set).",
    )
    temporal_tls_ca_file: str = Field(
        "", description="PEM file of the CA that signed Temporal's server certificate (empty: the system's roots)."
    )
    temporal_tls_cert_file: str = Field(
        "", description="mTLS: PEM file of this process's client certificate (with CONCORDAT_TEMPORAL_TLS_KEY_FILE)."
    )
    temporal_tls_key_file: str = Field(
        "", description="mTLS: PEM file of the client certificate's private key.", validate_default=True
    )
    temporal_tls_server_name: str = Field(
        "", description="The name to check Temporal's certificate against (empty: the host of the address)."
    )
    temporal_api_key: SecretStr = Field(
        SecretStr(""), description="An API key sent to Temporal with every call (Temporal Cloud); implies TLS."
    )
    task_queue: str = Field(
        "", description="The task queue the workers poll. Empty: `concordat-` and the store's id, the store's own."
    )
    temporal_ui_port: int = Field(
        0, description="Port of Temporal's web UI under `concordat up` (0: gRPC port + 1000)."
    )
    temporal_ui: bool = Field(
        False,
        description="Start Temporal's web UI under `concordat up` (off by default: anyone who reaches it can "
        "terminate, signal or reset workflows, with no sign-in). Same as `concordat up --temporal-ui`.",
    )
    watch_seconds: float = Field(
        60.0,
        ge=0,
        description="Every N seconds a worker looks for live cases whose workflow ended outside the engine "
        "(terminated, cancelled, timed out, missing), records it and starts it again (0: never).",
    )
    pg_recorder: Literal["stamped", "locking"] = Field(
        "stamped",
        description="PostgreSQL only: how the event log keeps commit order. stamped: writers take no lock and "
        "events are numbered after they commit. locking: eventsourcing's table lock on every insert. Stop "
        "every process of the store to switch.",
    )
    snapshot_interval: int = Field(50, ge=0, description="Snapshot a case every N events (0: never).")
    policy_file: Path | None = Field(None, description="A governance policy file to use instead of the shipped one.")
    log_format: Literal["console", "json"] = "console"
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    actor: str = Field(
        "", description="The role to act in (ROLE, or ROLE:ID of the signed-in person) when a command has no --as."
    )
    token: SecretStr = Field(
        SecretStr(""),
        description="An API token the CLI acts with (for scripts); else the one `concordat login` saved.",
    )
    credentials: str = Field(
        "",
        description="The CLI's credentials file (default: $XDG_CONFIG_HOME or ~/.config, concordat/credentials.json).",
    )
    fault_pause_after_commit: float = Field(
        0.0,
        ge=0,
        description="Fault tests only: a worker sleeps this long after each command commits, "
        "so a test can kill it between the commit and the activity's completion.",
    )
    fault_pause_once_file: Path | None = Field(
        None,
        description="Fault tests only: with CONCORDAT_FAULT_PAUSE_AFTER_COMMIT, pause once only: the pause that "
        "creates this file happens, no later one (so a worker restarted by `concordat up` runs freely).",
    )
    cipher_key: SecretStr = Field(
        SecretStr(""),
        description="Encrypt event state at rest with AES-GCM under this base64 key (16, 24 or 32 bytes).",
    )
    previous_cipher_keys: SecretStr = Field(
        SecretStr(""),
        description="Cipher keys used before a rotation (base64, comma-separated): Temporal payloads written under "
        "them are still read, never written, so running workflows survive the rotation.",
    )
    command_key: SecretStr = Field(
        SecretStr(""),
        description="Signs each command sent into Temporal; workers verify it (base64, 32 bytes). Empty: derived "
        "from the cipher key, else a key kept in the data dir (one machine only).",
    )
    audit_key: SecretStr = Field(
        SecretStr(""),
        description="Ed25519 seed (base64, 32 bytes) that signs the log's seals and published heads. Empty: a key "
        "kept in the data dir.",
    )
    http_address: str = Field("127.0.0.1:8000", description="Where the web app and API listen, HOST:PORT.")
    session_secret: SecretStr = Field(
        SecretStr(""),
        description="Signs the web session cookie. Empty: a random secret kept in the data dir (one machine only; "
        "set it when more than one web process serves the same users).",
    )
    trusted_proxy_header: str = Field(
        "",
        description="The header a trusted reverse proxy sets to the client's address (e.g. X-Forwarded-For; its "
        "last entry is used). The sign-in throttle counts attempts per address from it. Empty: the socket's peer "
        "address, and such headers are ignored (anyone can send them).",
    )
    metrics_address: str = Field(
        "",
        description="Where a worker or projection runner serves Prometheus metrics, HOST:PORT (empty: off).",
    )
    metrics_token: SecretStr = Field(
        SecretStr(""),
        description="The web app serves the case metrics at /metrics only to this bearer token (empty: not at all).",
    )

    smtp_host: str = Field(
        "",
        description="The SMTP server reminders and escalations are sent through (empty: none; the outbox fills "
        "and nothing is sent).",
    )
    smtp_port: int = Field(0, ge=0, le=65535, description="Its port (0: 25, 587 with STARTTLS, 465 with TLS).")
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none, starttls (upgrade a plain connection) or tls (TLS from the start)."
    )
    smtp_username: str = Field("", description="Log in to the SMTP server as this user (empty: no login).")
    smtp_password: SecretStr = Field(SecretStr(""), description="The SMTP user's password (never logged).")
    smtp_sender: str = Field("", description="The From address of reminders, e.g. concordat@jcu.example.org.")
    smtp_digest: bool = Field(
        False,
        description="Send each person one message a day listing their reminders and escalations, instead of "
        "one message each.",
    )
    smtp_digest_at: time = Field(time(9, 30), description="The local time (Europe/London) the daily digest goes out.")
    outbox_max_age_days: float = Field(
        7.0,
        gt=0,
        description="A reminder already older than this when the outbox first sees it is kept, marked expired, "
        "and not sent (an outbox started on a store with a history does not mail its past).",
    )
    outbox_poll_seconds: float = Field(2.0, gt=0, description="How often the sender looks for rows to send.")
    fault_pause_after_send: float = Field(
        0.0,
        ge=0,
        description="Fault tests only: the sender sleeps this long after the SMTP server accepts a message, "
        "before marking it sent, so a test can kill it in between.",
    )
    fault_pause_before_swap: float = Field(
        0.0,
        ge=0,
        description="Fault tests only: `audit replay` sleeps this long after rebuilding the views and before "
        "swapping them in, so a test can record events in between.",
    )

    @field_validator("smtp_sender")
    @classmethod
    def _one_address(cls, value: str) -> str:
        value = value.strip()
        if value and not EMAIL.match(value):
            msg = "must be one address, like concordat@jcu.example.org (no display name)"
            raise ValueError(msg)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            msg = "must be empty (SQLite in the data dir) or a postgresql:// URL"
            raise ValueError(msg)
        return value

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url)

    @field_validator("temporal_tls_ca_file", "temporal_tls_cert_file", "temporal_tls_key_file")
    @classmethod
    def _readable(cls, value: str, info: ValidationInfo) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"{value!r} is not a readable file (give the path of a PEM file)")
        if info.field_name == "temporal_tls_key_file" and bool(value) != bool(info.data.get("temporal_tls_cert_file")):
            raise ValueError(
                "a client certificate needs its key: set CONCORDAT_TEMPORAL_TLS_CERT_FILE and _KEY_FILE both"
            )
        return value

"""Who is at the command line: a person of the directory, proven by an API token, never by a claim.

The token comes from `CONCORDAT_TOKEN` (for scripts and CI, as `GH_TOKEN` is for `gh`), or from the
credentials file that `concordat login` writes (as `gh auth login` and `kubectl` do): one entry per
store, so a person signed in to two deployments keeps both. The file is readable only by its owner
(0600 in a 0700 directory), and a token is never printed after it is made. `concordat logout` revokes
the token and forgets it.

The file is `$CONCORDAT_CREDENTIALS` if set, else `$XDG_CONFIG_HOME/concordat/credentials.json`, else
`~/.config/concordat/credentials.json`.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from concordat.settings import Settings
from domain.errors import InvalidInputError


def credentials_path(settings: Settings) -> Path:
    if settings.credentials:
        return Path(settings.credentials).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "concordat" / "credentials.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"stores": {}}
    except OSError as err:
        raise InvalidInputError(f"cannot read the credentials file {path}: {err.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInputError(
            f"the credentials file {path} is not JSON; remove it and sign in again with `concordat login`"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("stores"), dict):
        raise InvalidInputError(f"the credentials file {path} is not one `concordat login` wrote; remove it")
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(partial, path)


def saved(settings: Settings, store: str) -> dict[str, str] | None:
    """The entry `concordat login` saved for this store: {"user", "token", "token_id"}, or None."""
    entry = _read(credentials_path(settings))["stores"].get(store)
    return entry if isinstance(entry, dict) and entry.get("token") else None


def token_for(settings: Settings, store: str) -> tuple[str, str] | None:
    """(token, where it came from) for this store, or None when nobody is signed in."""
    given = settings.token.get_secret_value().strip()
    if given:
        return given, "CONCORDAT_TOKEN"
    entry = saved(settings, store)
    return (entry["token"], str(credentials_path(settings))) if entry else None


def save(settings: Settings, store: str, *, user: str, token: str, token_id: str, where: str) -> Path:
    path = credentials_path(settings)
    data = _read(path)
    data["stores"][store] = {"user": user, "token": token, "token_id": token_id, "store": where}
    _write(path, data)
    return path


def forget(settings: Settings, store: str) -> dict[str, str] | None:
    """Remove this store's entry; the entry that was there, if any."""
    path = credentials_path(settings)
    data = _read(path)
    entry = data["stores"].pop(store, None)
    if entry is not None:
        _write(path, data)
    return entry

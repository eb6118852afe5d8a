"""A store that cannot be reached as configured is named at once, in the database's own words, with
exit 69 (a dependency that is not there), not "store unavailable, try again" after a pool's timeout:
no such database, no such role, a host that does not resolve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict


def _url(server: str, **changes: str) -> str:
    info = {**conninfo_to_dict(server), **changes}
    user, db, host = info.get("user") or "postgres", info.get("dbname") or "postgres", str(info.get("host") or "")
    if host.startswith("/"):
        return f"postgresql://{user}@/{db}?host={host}" + (f"&port={info['port']}" if info.get("port") else "")
    return f"postgresql://{user}@{host}:{info.get('port') or 5432}/{db}"


@pytest.mark.parametrize(
    ("changes", "cause"),
    [
        ({"dbname": "no_such_database"}, 'database "no_such_database" does not exist'),
        ({"user": "no_such_role"}, 'role "no_such_role" does not exist'),
        ({"host": "no-such-host.invalid", "port": "5432"}, "failed to resolve host 'no-such-host.invalid'"),
    ],
    ids=["database", "role", "host"],
)
@pytest.mark.parametrize("command", [["list"], ["migrate"]])
def test_a_wrong_database_url_is_named_at_once(
    postgres_server: str, tmp_path: Path, changes: dict[str, str], cause: str, command: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCORDAT_")}
    env.update(CONCORDAT_DATA_DIR=str(tmp_path / "data"), CONCORDAT_DATABASE_URL=_url(postgres_server, **changes))
    done = subprocess.run([sys.executable, "-m", "concordat", *command], env=env, capture_output=True, text=True)
    assert done.returncode == 69, done.stderr
    (line,) = done.stderr.strip().splitlines()  # one line, never a traceback
    assert line.startswith("concordat: cannot connect to the store (PostgreSQL") and cause in line, line

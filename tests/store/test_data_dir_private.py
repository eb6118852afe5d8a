"""The data dir is its owner's alone (`concordat.private`): the store, the views, keys and logs are made
0700/0600 whatever the process's umask, and `tighten` (run by `concordat up`) fixes what an earlier
release left readable by others. `tests/e2e/test_temporal_holds_no_case_text.py` checks the same
after a real `concordat up`, Temporal's own database included."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from concordat import bootstrap, keys, private
from concordat.settings import Settings
from domain.actor import Actor


def modes(root: Path) -> dict[str, int]:
    """Every directory and file under `root` (and `root`), relative path → permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for where, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = Path(where) / name
            if not path.is_symlink():
                found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def loose(root: Path) -> dict[str, str]:
    """What is not 0700 (directories) or 0600 (files)."""
    return {
        name: oct(mode) for name, mode in modes(root).items() if mode != (0o700 if (root / name).is_dir() else 0o600)
    }


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The usual umask of a shell (0o022): what Concordat makes must not depend on it."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_the_store_views_keys_and_logs_are_made_0700_and_0600(sqlite_settings: Settings, lax_umask: None) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    app.start_proposal(
        actor=Actor.parse("jcu_lead:jo"),
        command_id="p1",
        title="Private",
        kind="procurement",
        value_pence=100_000,
        parties=["PCC"],
        public_health=False,
    )
    for name in ("case_list", "decisions", "public_health"):
        bootstrap.open_view(sqlite_settings, name)
    keys.command_key(sqlite_settings)
    keys.audit_key(sqlite_settings)
    private.make_file(bootstrap.data_path(sqlite_settings, "logs", "worker.log"))
    data = sqlite_settings.data_dir.resolve()
    made = modes(data)
    assert {"events.sqlite", "views/case_list.sqlite", "keys", "logs/worker.log"} <= set(made)
    assert any(name.endswith("-wal") for name in made)  # SQLite's own files are checked too
    assert loose(data) == {}


def test_data_path_makes_each_missing_parent_0700(tmp_path: Path, lax_umask: None) -> None:
    settings = Settings(data_dir=tmp_path / "a" / "b")
    path = bootstrap.data_path(settings, "logs", "deep", "x.log")
    assert path.parent.is_dir()
    assert loose(tmp_path / "a") == {}


def test_tighten_makes_an_existing_data_dir_private_and_leaves_links_alone(tmp_path: Path, lax_umask: None) -> None:
    data = tmp_path / "data"
    (data / "views").mkdir(parents=True, mode=0o755)
    (data / "events.sqlite").write_bytes(b"")
    (data / "views" / "case_list.sqlite").write_bytes(b"")
    (data / "temporal.sqlite").write_bytes(b"")
    os.chmod(data / "temporal.sqlite", 0o644)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)
    assert loose(data) != {}

    assert private.tighten(data) >= 4
    assert loose(data) == {}
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # a link is not followed
    assert private.tighten(data) == 0  # nothing more to do

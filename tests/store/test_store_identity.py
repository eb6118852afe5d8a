"""A store names itself once, and its task queue follows from that name, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

from concordat import bootstrap, engine
from concordat.settings import Settings
from domain.audit import Auditor
from domain.store import store_id


def test_a_store_keeps_the_name_it_was_given_first(settings: Settings) -> None:
    first = store_id(bootstrap.open_cases(settings))
    assert len(first) == 32
    assert store_id(bootstrap.open_cases(settings)) == first  # another process, later: the same name


def test_two_stores_have_two_names_and_two_task_queues(tmp_path: Path) -> None:
    one = Settings(data_dir=tmp_path / "one", database_url="")
    two = Settings(data_dir=tmp_path / "two", database_url="")
    queue_one = engine.task_queue(one, bootstrap.open_cases(one))
    queue_two = engine.task_queue(two, bootstrap.open_cases(two))
    assert queue_one.startswith("concordat-") and queue_two.startswith("concordat-")
    assert queue_one != queue_two


def test_the_task_queue_is_the_stores_own_unless_one_is_named(sqlite_settings: Settings) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    assert engine.task_queue(sqlite_settings, app) == f"concordat-{store_id(app)}"
    named = sqlite_settings.model_copy(update={"task_queue": "ops-queue"})
    assert engine.task_queue(named, app) == "ops-queue"


def test_processes_naming_a_new_store_at_once_agree_on_one_name(settings: Settings) -> None:
    apps = [bootstrap.open_cases(settings) for _ in range(4)]
    names: list[str] = []
    start = threading.Barrier(len(apps))

    def ask(app: object) -> None:
        start.wait()
        names.append(store_id(app))  # type: ignore[arg-type]

    threads = [threading.Thread(target=ask, args=(app,)) for app in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(names) == 4 and len(set(names)) == 1


def test_the_identity_is_an_event_in_the_chain_the_auditor_verifies(sqlite_settings: Settings) -> None:
    app = bootstrap.open_cases(sqlite_settings)
    store_id(app)
    checked, breaks = Auditor(app).verify()
    assert checked >= 1 and breaks == []


def test_the_store_is_described_without_its_password(tmp_path: Path) -> None:
    pg = Settings(data_dir=tmp_path, database_url="postgresql://ops:s3cret@db.internal:5433/concordat")
    assert bootstrap.describe_store(pg) == "PostgreSQL db.internal:5433/concordat"
    lite = Settings(data_dir=tmp_path / "data", database_url="")
    assert bootstrap.describe_store(lite) == f"SQLite {(tmp_path / 'data' / 'events.sqlite').resolve()}"

"""The sign-in throttle's counts live in the store's database, on SQLite and PostgreSQL: counted before
a password is checked, shared by every process on the store, bounded by a window."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from concordat import bootstrap
from concordat.settings import Settings
from concordat.web.throttle import Refused, SignInThrottle

KEYS = {"user id": "user:sam", "client address": "client:10.0.0.1"}


def test_attempts_are_counted_as_they_start_and_shared_by_every_process(settings: Settings) -> None:
    now = [1_000_000.0]
    stores = [bootstrap.open_cases(settings) for _ in range(2)]  # two processes' connections to one store
    first, other = (SignInThrottle(s.recorder.datastore, clock=lambda: now[0]) for s in stores)

    with ThreadPoolExecutor(max_workers=8) as pool:  # parallel attempts, nothing finished yet
        answers = list(pool.map(lambda n: (first if n % 2 else other).take(KEYS), range(40)))
    let_through = [a for a in answers if a is None]
    assert len(let_through) == SignInThrottle.LIMIT
    assert all(isinstance(a, Refused) and a.what == "user id" for a in answers if a is not None)
    assert first.attempts("user:sam") == other.attempts("user:sam") == SignInThrottle.LIMIT
    assert first.attempts("client:10.0.0.1") == SignInThrottle.LIMIT  # a refused attempt counts nowhere

    now[0] += 60
    refused = other.take(KEYS)
    assert refused == Refused("user id", SignInThrottle.WINDOW - 60)  # Retry-After: when the window ends
    assert other.take({"user id": "user:jo", "client address": "client:10.0.0.1"}) is None  # another id may try

    now[0] += SignInThrottle.WINDOW  # the window has passed: the id may try again, counted afresh
    assert first.take(KEYS) is None and first.attempts("user:sam") == 1
    first.succeeded(KEYS)  # a success forgets the id's attempts and gives back the address's one
    assert first.attempts("user:sam") == 0 and first.attempts("client:10.0.0.1") == 0
    assert first.attempts("user:jo") == 0  # pruned: its window had passed


def test_one_address_is_limited_across_ids(settings: Settings) -> None:
    store = bootstrap.open_cases(settings)
    throttle = SignInThrottle(store.recorder.datastore, clock=lambda: 5_000_000.0)
    for n in range(SignInThrottle.CLIENT_LIMIT):
        assert throttle.take({"user id": f"user:guess{n}", "client address": "client:10.0.0.9"}) is None
    refused = throttle.take({"user id": "user:another", "client address": "client:10.0.0.9"})
    assert refused is not None and refused.what == "client address"
    assert throttle.attempts("user:another") == 0  # all or none: the id's count was rolled back

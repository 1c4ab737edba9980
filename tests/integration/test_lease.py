"""The scheduler lease (issue 9, finding 6): dated by the database's clock, so callers whose
clocks differ agree; a dead holder on this host is taken over at once."""

from __future__ import annotations

import multiprocessing
import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from duban.engine import lease
from duban.store.db import Store
from duban.store.models import SchedulerLease
from tests.integration import workers
from tests.integration.smtp import wait_until

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def age_lease(store: Store, by: timedelta) -> None:
    """As if `by` had passed on the database's clock since the lease was last renewed."""
    with store.write() as session:
        for row in session.scalars(select(SchedulerLease)):
            row.expires_at = row.expires_at - by


def test_second_scheduler_is_refused_while_the_first_holds_the_lease(mini):
    assert lease.acquire(mini, holder="first", now=NOW) is None
    held = lease.acquire(mini, holder="second", now=NOW + timedelta(seconds=10))
    assert held is not None and held.startswith("first (lease valid until")
    assert lease.acquire(mini, holder="first", now=NOW + timedelta(seconds=30)) is None


def test_a_caller_whose_clock_runs_ahead_does_not_take_a_live_lease(mini):
    assert lease.acquire(mini, holder="first", now=NOW) is None
    ahead = NOW + lease.DEFAULT_TTL + timedelta(hours=1)
    assert lease.acquire(mini, holder="second", now=ahead) is not None


def test_lease_of_a_crashed_scheduler_expires_by_the_database_clock(mini):
    assert lease.acquire(mini, holder="crashed") is None
    assert lease.acquire(mini, holder="next") is not None
    age_lease(mini, lease.DEFAULT_TTL)
    assert lease.acquire(mini, holder="next") is None


def test_released_lease_is_free_at_once(mini):
    assert lease.acquire(mini, holder="first") is None
    lease.release(mini, holder="first")
    assert lease.acquire(mini, holder="second") is None


def test_a_dead_holder_on_this_host_is_taken_over_at_once(mini, db_url, tmp_path: Path):
    ready = tmp_path / "holder"
    process = multiprocessing.get_context("spawn").Process(
        target=workers.hold_lease, args=(db_url, str(ready))
    )
    process.start()
    try:
        wait_until(ready.exists, 60, "the other process to take the lease")
        holder = ready.read_text()
        assert holder == f"duban run pid {process.pid} on {lease.here()}"
        # alive: refused, naming it
        refused = lease.acquire(mini, holder="me")
        assert refused is not None and refused.startswith(holder)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.join(timeout=30)
    assert lease.acquire(mini, holder="me") is None


def test_a_holder_on_another_host_is_not_judged_here(mini):
    other = "duban run pid 1 on some-other-host/4026531836"
    assert lease.acquire(mini, holder=other) is None
    assert lease.acquire(mini, holder="me") is not None

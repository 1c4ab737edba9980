"""Two processes writing to the same database at once: nothing is lost, nothing doubled."""

from __future__ import annotations

import multiprocessing

from sqlalchemy import func, select

from duban.engine.materialize import materialize
from duban.store import audit
from duban.store.models import Evidence, Task
from tests.integration import workers
from tests.integration.helpers import TZ, at

NOTES_EACH = 40


def _two(target, args_a, args_b):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        a = pool.apply_async(target, args_a)
        b = pool.apply_async(target, args_b)
        return a.get(timeout=120), b.get(timeout=120)


def test_two_processes_appending_at_once_keep_one_unbroken_chain(mini, calendar, db_url):
    materialize(mini, calendar=calendar, now=at("2022-05-10"), tz=TZ)
    with mini.read() as session:
        task_id = session.scalars(select(Task.id)).first()
    _two(workers.add_notes, (db_url, task_id, "a", NOTES_EACH), (db_url, task_id, "b", NOTES_EACH))
    with mini.consistent() as session:
        notes = session.scalar(select(func.count()).select_from(Evidence))
        verdict = audit.verify(session)
    assert notes == 2 * NOTES_EACH
    assert verdict.ok, verdict.problem


def test_two_processes_materializing_at_once_create_each_task_once(mini, db_url):
    created = _two(workers.run_materialize, (db_url, "2023-04-30"), (db_url, "2023-04-30"))
    with mini.read() as session:
        total = session.scalar(select(func.count()).select_from(Task))
        distinct = session.scalar(
            select(func.count()).select_from(
                select(Task.obligation_id, Task.org_id, Task.period_key).distinct().subquery()
            )
        )
    assert total == distinct == sum(created)
    assert total > 0

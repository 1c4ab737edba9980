"""Benchmark: materialize a national-scale county set, against a raw bulk insert baseline.

    python bench/materialize.py [--orgs 30000] [--obligations 40] [--db sqlite postgresql]

For each database it generates the organizations and obligations (mixed recurrence, one
year), loads them, and prints:
  - materialize: tasks created, seconds, tasks per second;
  - baseline: the same rows inserted by the same driver with `executemany` into a copy of the
    tasks table (same unique key and indexes), rows generated lazily in batches;
  - ratio = materialize / baseline (target ≤ 2);
  - the idempotent re-run's time and its share of the first run (target ≤ 10%);
  - peak memory growth (max RSS) during materialize (bounded: the database does the fan-out).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from duban.catalog.calendar import load_calendar  # noqa: E402
from duban.catalog.loader import Catalog, load_catalog  # noqa: E402
from duban.domain.due import end_of_day, start_of_day  # noqa: E402
from duban.domain.workdays import WorkdayCalendar  # noqa: E402
from duban.engine.materialize import materialize  # noqa: E402
from duban.engine.sync import sync_catalog  # noqa: E402
from duban.store.db import Store  # noqa: E402
from duban.store.models import Task  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
YEAR = 2024
TAGS = ["midwifery", "township", "county-hospital", "village-clinic"]
KINDS = ["monthly", "bimonthly", "quarterly", "half_yearly", "yearly"]
BATCH = 20_000
PG_ADMIN = os.environ.get(
    "DUBAN_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def write_inputs(folder: Path, orgs: int, obligations: int) -> tuple[Path, Path]:
    org_rows = []
    for i in range(orgs):
        tags = [t for k, t in enumerate(TAGS) if (i + k) % (k + 2) == 0] or ["village-clinic"]
        org_rows.append({"id": f"org-{i}", "name": f"机构{i}", "tags": tags})
    org_file = folder / "orgs.yaml"
    org_file.write_text(
        json.dumps(
            {"region": "bench", "tags": {t: t for t in TAGS}, "organizations": org_rows},
            ensure_ascii=False,
        )
    )
    obs = []
    for j in range(obligations):
        kind = KINDS[j % len(KINDS)]
        due = (
            {"kind": "day_of_next_month", "day": 5}
            if kind == "monthly" and j % 2
            else {"kind": "end_of_period", "shift": "next_working_day"}
        )
        obs.append(
            {
                "id": f"ob-{j}",
                "title": f"职责{j}",
                "source": {"clause": str(j), "quote": "bench"},
                "responsible": [{"tags": [TAGS[j % len(TAGS)]]}],
                "recurrence": {"kind": kind},
                "due": due,
                "evidence": ["report"],
            }
        )
    plan_file = folder / "plan.yaml"
    plan_file.write_text(
        json.dumps(
            {
                "plan": {
                    "id": "bench",
                    "title": "bench",
                    "document": "bench",
                    "issuer": "bench",
                    "issued": f"{YEAR}-01-01",
                    "valid": {"from": f"{YEAR}-01-01", "until": f"{YEAR}-12-31"},
                },
                "obligations": obs,
            },
            ensure_ascii=False,
        )
    )
    return plan_file, org_file


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def planned_rows(catalog, calendar, org_ids: dict[str, int], ob_ids: dict[str, int]):
    """The same rows materialize creates, generated lazily for the baseline."""
    now = datetime.now(UTC)
    by_tag: dict[str, list[int]] = {}
    for o in catalog.organizations:
        for t in o.tags:
            by_tag.setdefault(t, []).append(org_ids[o.id])
    for lo in catalog.obligations:
        ob = lo.domain
        (selector,) = ob.responsible
        (tag,) = selector.tags
        for period in ob.periods():
            due = ob.due_date(period, calendar)
            fixed = (
                ob_ids[ob.code],
                period.key,
                period.start,
                period.end,
                due,
                end_of_day(due, TZ),
                start_of_day(period.start, TZ),
                "open",
                now,
                now,
            )
            for org_id in by_tag.get(tag, []):
                yield (fixed[0], org_id, *fixed[1:])


def baseline(store: Store, rows) -> float:
    """executemany into a copy of the tasks table, through the same DBAPI driver."""
    copy_ddl = (
        "CREATE TABLE tasks_baseline (id INTEGER PRIMARY KEY, obligation_id INTEGER, "
        "org_id INTEGER, period_key VARCHAR(32), period_start DATE, period_end DATE, "
        "due_date DATE, due_at TIMESTAMP, opens_at TIMESTAMP, state VARCHAR(16), "
        "created_at TIMESTAMP, updated_at TIMESTAMP, "
        "UNIQUE (obligation_id, org_id, period_key))"
    )
    if store.dialect == "postgresql":
        copy_ddl = copy_ddl.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY").replace(
            "TIMESTAMP", "TIMESTAMPTZ"
        )
    sql = (
        "INSERT INTO tasks_baseline (obligation_id, org_id, period_key, period_start, "
        "period_end, due_date, due_at, opens_at, state, created_at, updated_at) VALUES "
    )
    sql += (
        "(?,?,?,?,?,?,?,?,?,?,?)"
        if store.dialect == "sqlite"
        else "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
    )
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(copy_ddl)
        cur.execute("CREATE INDEX ix_b_state_due ON tasks_baseline (state, due_at)")
        cur.execute("CREATE INDEX ix_b_org_due ON tasks_baseline (org_id, due_at)")
        raw.commit()
        if store.dialect == "sqlite":
            cur.execute("BEGIN IMMEDIATE")
        started = time.perf_counter()
        while batch := list(islice(rows, BATCH)):
            cur.executemany(sql, batch)
        raw.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def loaded(url: str, plan: Path, orgs: Path) -> tuple[Store, WorkdayCalendar, Catalog]:
    """The database at the latest schema with the generated plan synced into it on 1 January,
    the working-day calendar, and the catalog: where every benchmark starts."""
    calendar = load_calendar(ROOT / "calendar")
    catalog = load_catalog([plan], [orgs], calendar)
    store = Store.from_url(url)
    store.upgrade()
    with store.write() as session:
        sync_catalog(session, catalog, now=datetime(YEAR, 1, 1, tzinfo=UTC))
    return store, calendar, catalog


def run_one(dialect: str, url: str, plan: Path, orgs: Path) -> None:
    store, calendar, catalog = loaded(url, plan, orgs)
    now = datetime(YEAR + 1, 1, 1, tzinfo=UTC)
    rss_before = max_rss_mib()
    started = time.perf_counter()
    report = materialize(store, calendar=calendar, now=now, tz=TZ)
    first = time.perf_counter() - started
    rss_growth = max_rss_mib() - rss_before
    started = time.perf_counter()
    again = materialize(store, calendar=calendar, now=now, tz=TZ)
    rerun = time.perf_counter() - started
    with store.read() as session:
        total = session.scalar(select(func.count()).select_from(Task)) or 0
        org_ids = dict(session.execute(text("SELECT code, id FROM organizations")).all())
        ob_ids = dict(session.execute(text("SELECT code, id FROM obligations")).all())
    assert total == report.tasks_created and again.tasks_created == 0
    base = baseline(store, planned_rows(catalog, calendar, org_ids, ob_ids))
    with store.read() as session:
        base_rows = session.scalar(text("SELECT count(*) FROM tasks_baseline"))
    assert base_rows == total, f"baseline inserted {base_rows} rows, materialize {total}"
    store.dispose()
    print(
        f"{dialect:10} tasks {total:>10,}  materialize {first:8.2f} s "
        f"({total / first:>9,.0f}/s)  baseline {base:8.2f} s ({total / base:>9,.0f}/s)  "
        f"ratio {first / base:5.2f}  re-run {rerun:6.3f} s ({100 * rerun / first:4.1f}%)  "
        f"max-RSS growth {rss_growth:6.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--orgs", type=int, default=30_000)
    parser.add_argument("--obligations", type=int, default=40)
    parser.add_argument(
        "--db", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        plan, orgs = write_inputs(folder, args.orgs, args.obligations)
        print(f"{args.orgs:,} organizations, {args.obligations} obligations, year {YEAR}")
        for dialect in args.db:
            if dialect == "sqlite":
                run_one("sqlite", f"sqlite:///{folder / 'bench.db'}", plan, orgs)
                continue
            name = f"duban_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                run_one("postgresql", PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", plan, orgs)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main()

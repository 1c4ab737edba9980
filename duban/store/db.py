"""Engines, transactions and migrations.

SQLite runs in WAL mode with a busy timeout, and every *write* transaction starts with
`BEGIN IMMEDIATE`: a deferred transaction that reads and then writes can otherwise fail at
once with "database is locked" when a second writer got in between, busy timeout or not.
Read transactions stay deferred, so readers never wait for writers.

On PostgreSQL, `read()` runs each statement in its own transaction (autocommit) on a pool of
connections that are read-only server-side. At READ COMMITTED, PostgreSQL's default, every
statement of a transaction takes a new snapshot anyway, so a read transaction gave its
statements no more consistency than this, and cost two more round trips (BEGIN, COMMIT) per
page; a write slipped into `read()` fails at once ("read-only transaction"). What must see one
snapshot across statements, or streams rows through a server-side cursor, uses `consistent()`.

The schema is checked before the first session a store opens: a database at another Alembic
revision than this code's newest raises SchemaBehind (run `duban init`), SchemaAhead (a later
release wrote it) or NotInitialised, before any statement that could fail half-way on a missing
column. `upgrade()` is what brings it to the code's revision; `write(any_schema=True)` is for
the scheduler lease alone, whose table is the same in every revision (0001), so the lease can
be taken before an upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from duban.errors import NotInitialised, SchemaAhead, SchemaBehind, StoreError
from duban.store.changes import MARK

BUSY_TIMEOUT_MS = 30_000
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """This code's newest Alembic revision, and every revision it knows."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    assert head is not None
    return head, frozenset(r.revision for r in script.walk_revisions())


def head_revision() -> str:
    """The schema revision this code works on (the newest migration)."""
    return _revisions()[0]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Autocommit at the driver level; SQLAlchemy's "begin" event emits BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("duban_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; for SQLite with the pragmas and begin behaviour described above."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


class Store:
    """The database: `read()` and `write()` give a session inside one transaction.

    Leaving `write()` normally commits; an exception rolls everything back.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(duban_write=True)
        self._reader = engine
        if engine.dialect.name == "postgresql":
            self._reader = create_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                connect_args={"options": "-c default_transaction_read_only=on"},
            )
        self._read_sessions = sessionmaker(self._reader, expire_on_commit=False)
        self._write_sessions = sessionmaker(self._writer, expire_on_commit=False)
        self._schema_ok = False  # set once the schema was found at head_revision()
        self._snapshot_sessions = sessionmaker(
            engine.execution_options(isolation_level="REPEATABLE READ")
            if engine.dialect.name == "postgresql"
            else engine,
            expire_on_commit=False,
        )

    @classmethod
    def from_url(cls, url: str) -> Store:
        return cls(make_engine(url))

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine the store runs statements on (the main one, and on PostgreSQL the
        read-only one behind `read()`): what a listener for all its statements attaches to."""
        return (self.engine,) if self._reader is self.engine else (self.engine, self._reader)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self, *, any_schema: bool = False) -> Iterator[Session]:
        """A write transaction; `any_schema` skips the schema check (the lease's use only)."""
        if not any_schema:
            self.require_schema()
        with self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        self.require_schema()
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def consistent(self) -> Iterator[Session]:
        """A read transaction whose statements all see one snapshot (REPEATABLE READ on
        PostgreSQL): for a read of several statements that must agree, and for streaming a
        large result through a server-side cursor (`yield_per`), which needs a transaction."""
        self.require_schema()
        with self._snapshot_sessions() as session, session.begin():
            yield session

    @contextmanager
    def snapshot(self) -> Iterator[tuple[Session, str | None]]:
        """A read transaction whose statements all see one snapshot, and, on PostgreSQL, a
        name for what it holds of the tasks and the catalogue: the change mark's count
        (duban.store.changes, migration 0010), which grows at the commit of every change to
        them. Two snapshots with the same name see the same tasks, institutions, tags, plans
        and duties, so what is computed from those alone may be reused for the other
        (duban.engine.snapshots). SQLite's read transaction sees one snapshot too; its name is
        None: nothing is reused."""
        with self.consistent() as session:
            if self.dialect != "postgresql":
                yield session, None
                return
            # The first statement takes the REPEATABLE READ snapshot: this one reads its mark.
            # It also plans every statement of the transaction for its own parameters:
            # psycopg prepares a statement run five times, and PostgreSQL then switched the
            # home page's ranking to a generic plan, 11 ms -> 65 ms for a tag (the aggregates
            # here cost far more to run than to plan). No mark row: no name, nothing kept.
            name = session.scalar(
                text(
                    "SELECT (SELECT n FROM change_marks WHERE id = :mark)::text"
                    " || left(set_config('plan_cache_mode', 'force_custom_plan', true), 0)"
                ),
                {"mark": MARK},
            )
            yield session, None if name is None else f"changes:{name}"

    def analyze(self, *tables: str) -> None:
        """Refresh the planner's statistics after a bulk write.

        PostgreSQL's autovacuum would get there within a minute or so, but a sweep that runs
        right after materialize created a year of tasks would be planned on empty-table
        estimates (nested loops over 'two' contacts, measured at 40x slower). SQLite's planner
        uses `ANALYZE` statistics the same way.
        """
        with self.engine.connect() as conn:
            for table in tables:
                conn.exec_driver_sql(f"ANALYZE {table}")
            conn.commit()

    def alembic_config(self) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["engine"] = self._writer
        return cfg

    def upgrade(self) -> None:
        """Create or upgrade the schema to the latest migration (safe to run twice).

        A database at a revision this code does not know (a later release's) raises
        SchemaAhead and is left alone."""
        self.require_known()
        try:
            command.upgrade(self.alembic_config(), "head")
        except OperationalError as exc:
            raise StoreError(f"cannot reach the database {self.engine.url!r}: {exc.orig}") from exc
        self._schema_ok = True

    def is_initialised(self) -> bool:
        return self.revision() is not None

    @property
    def where(self) -> str:
        """The database's URL as the user may see it (no password)."""
        return self.engine.url.render_as_string(hide_password=True)

    def revision(self) -> str | None:
        """The database's Alembic revision; None if it holds no duban schema. A SQLite file
        that does not exist is not created by asking."""
        url = self.engine.url
        file = url.database if url.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not Path(str(file)).exists():
            return None
        try:
            with self.engine.connect() as conn:
                if not inspect(conn).has_table("alembic_version"):
                    return None
                found = conn.scalar(text("SELECT version_num FROM alembic_version"))
        except OperationalError as exc:
            raise StoreError(f"cannot reach the database {self.engine.url!r}: {exc.orig}") from exc
        return None if found is None else str(found)

    def require_known(self) -> str | None:
        """The database's revision (None: no schema yet), or SchemaAhead if this code does
        not know it: what may be upgraded, before anything is written to it."""
        current = self.revision()
        if current is not None and current not in _revisions()[1]:
            raise self._ahead(current)
        return current

    def require_schema(self) -> None:
        """Raise unless the database is at this code's revision: NotInitialised, SchemaBehind
        (`duban init` upgrades it) or SchemaAhead. Asked once per store: what finds it current
        (or upgrades it) is not asked again."""
        if self._schema_ok:
            return
        current, head = self.revision(), head_revision()
        if current == head:
            self._schema_ok = True
            return
        if current is None:
            raise NotInitialised(f"the database at {self.where} is not initialised: run duban init")
        if current in _revisions()[1]:
            raise SchemaBehind(
                f"the database at {self.where} is at schema {current}, this duban needs {head}: "
                "run duban init to upgrade"
            )
        raise self._ahead(current)

    def _ahead(self, current: str) -> SchemaAhead:
        return SchemaAhead(
            f"the database at {self.where} is at schema {current}, newer than this duban "
            f"knows (it needs {head_revision()}): a later release upgraded it; upgrade duban"
        )

    def dispose(self) -> None:
        self.engine.dispose()
        if self._reader is not self.engine:
            self._reader.dispose()

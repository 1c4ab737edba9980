"""`duban demo`: the county plan as lived up to a day inside it, in a database of its own.

The history is made by the engine's own actions, each with an explicit `now` in the past, so
the audit trail is a real, verifiable history and every page shows what a county would see
on that day. It is deterministic for a seed: the same seed gives the same tasks, states and
times (only the demo users' passwords are random).

The story (`build`): the commission loads the 2022 plan the day after it was issued
(信卫健字〔2022〕41号, issued 2022-05-05) and the scheduler opens each period at local midnight
of its first day. Institutions submit most tasks before their deadline and a few after it;
the county's MCH section reviews within a few working days, rejects some submissions with a
reason (they are corrected and submitted again) and waives a few tasks; a few are never
submitted and are overdue on the day. One maternal death at the county people's hospital a
month before the day starts its deadline chain (notify within 5 working days, in-hospital
review within 20, county review within 2 months). Nothing dated after the as-of moment
happens: a review that would come later is still waiting in the queue.
"""

from __future__ import annotations

import heapq
import io
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select

from duban.bootstrap import App
from duban.catalog.loader import Catalog
from duban.domain.due import local_date, start_of_day
from duban.domain.tasks import Action
from duban.engine import actions, evidence, users
from duban.engine.materialize import materialize
from duban.resources import bundled
from duban.store.models import AuditEvent, ObligationRow, Organization, Task

DEMO_PLAN = "xinfeng-2022-mch-safety-year.yaml"
DEMO_ORGS = "organizations/xinfeng.yaml"
DEFAULT_AS_OF = date(2022, 10, 6)
DEFAULT_SEED = 2022
AS_OF_TIME = time(9, 0)  # the demo's clock starts at 09:00 local time on the as-of day
DEATH_ORG = "xf-rmyy"  # the county people's hospital, the critical-maternal centre
DEATH_DAYS_BEFORE = 31  # the maternal death happened about a month before the as-of day
# printed once at start: 16 letters and digits (about 93 bits), none easily misread
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PASSWORD_LENGTH = 16
COUNTY = "user:admin"  # the county commission's reviewer in the history
RECENT = timedelta(days=30)  # a demo institution's recent rejected submission is this fresh
PREPARE = timedelta(minutes=10)  # evidence goes in this long before the submission

#: (name, role, organization, what the user sees), printed with their passwords
DEMO_USERS = (
    ("admin", "admin", None, "县卫健委：逾期看板、审核、豁免 county office: board, review, waive"),
    ("auditor", "auditor", None, "审计：完成历史、审计链（只读） auditor: history, audit"),
    ("rmyy", "institution", "xf-rmyy", "信丰县人民医院：我的任务 the county people's hospital"),
    ("jdwsy", "institution", "xf-jd-wsy", "嘉定镇卫生院：我的任务 a township health centre"),
)

#: fates of a task due before the as-of day, as cumulative probabilities (the rest: on time)
P_WAIVED, P_NEVER, P_LATE, P_REJECTED = 0.03, 0.08, 0.20, 0.29
P_EARLY = 0.25  # a task not yet due that is already submitted
P_FILE = 0.5  # a submission that carries a file for each evidence kind (the rest: a note only)

REJECT_REASONS = (
    "缺少签到表，请补充后重新提交。",
    "报表数据与妇幼信息系统导出不一致，请核对后重新提交。",
    "会议纪要未加盖公章，请补充盖章扫描件。",
    "整改措施未列明责任人和完成时限，请补充。",
)
WAIVE_REASONS = (
    "本期该院暂停产科服务，经县卫健委妇幼股同意免报。",
    "本期工作已由县级统一组织开展，经妇幼股同意免报。",
)


@dataclass(frozen=True, kw_only=True)
class DemoUser:
    name: str
    role: str
    org: str | None
    password: str
    sees: str


@dataclass(kw_only=True)
class DemoReport:
    """What the history holds as of the day (tasks due before it, by how they ended)."""

    as_of: datetime
    tasks: int = 0
    due_before: int = 0
    on_time: int = 0
    late: int = 0
    resubmitted: int = 0
    waived: int = 0
    overdue_open: int = 0
    rejected_open: int = 0
    awaiting_review: int = 0
    death_event: int | None = None
    death_tasks: list[tuple[str, date]] = field(default_factory=list)


@dataclass(frozen=True)
class _Task:
    id: int
    obligation: str
    title: str
    kinds: tuple[str, ...]
    org: str
    period: str
    due_date: date
    due_at: datetime
    event_id: int | None


def demo_plan_files() -> tuple[list[Path], list[Path]]:
    """The county plan and the example county (the national plan is not loaded)."""
    folder = bundled("obligations")
    return [folder / DEMO_PLAN], [folder / DEMO_ORGS]


def as_of_moment(day: date, app: App) -> datetime:
    return datetime.combine(day, AS_OF_TIME, tzinfo=app.tz).astimezone(UTC)


def tiny_pdf(text: str) -> bytes:
    """A one-page PDF showing one line of ASCII text (the xref offsets are real)."""
    stream = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode("ascii", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    size = len(objects) + 1
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


class _History:
    """A small discrete-event run: actions wait in a heap ordered by their moment, and tasks
    appear when the scheduler would have created them (at each period's start)."""

    def __init__(self, app: App, *, as_of: datetime, seed: int) -> None:
        self.app = app
        self.tz = app.tz
        self.as_of = as_of
        self.rng = random.Random(seed)
        self.heap: list[tuple[datetime, int, Callable[[datetime], None]]] = []
        self.seq = 0
        self.seen = 0
        self.report = DemoReport(as_of=as_of)
        self.actors = {org: f"user:{name}" for name, _, org, _ in DEMO_USERS if org}
        self.to_reject = set(self.actors)

    # --- time ------------------------------------------------------------------------------

    def at(self, day: date, *, earliest: datetime | None = None) -> datetime:
        """A moment in office hours (08:30–17:30 local) on `day`, never before `earliest`."""
        minute = self.rng.randrange(8 * 60 + 30, 17 * 60 + 30)
        moment = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.tz)
        moment = moment.astimezone(UTC)
        if earliest is not None and moment < earliest + PREPARE:
            moment = earliest + PREPARE + timedelta(minutes=self.rng.randrange(5, 60))
        return moment

    def workday(self, day: date, back: bool = False) -> date:
        cal = self.app.calendar
        while not cal.is_workday(day):
            day += timedelta(days=-1 if back else 1)
        return day

    def later(self, moment: datetime, workdays: int) -> datetime:
        day = self.app.calendar.add_workdays(local_date(moment, self.tz), workdays)
        return self.at(day, earliest=moment)

    def schedule(self, moment: datetime, step: Callable[[datetime], None]) -> bool:
        """Queue `step` at `moment` unless that is after the as-of moment; says whether."""
        if moment >= self.as_of:
            return False
        self.seq += 1
        heapq.heappush(self.heap, (moment, self.seq, step))
        return True

    def run_until(self, moment: datetime) -> None:
        while self.heap and self.heap[0][0] < moment:
            when, _, step = heapq.heappop(self.heap)
            step(when)

    # --- the things people do --------------------------------------------------------------

    def actor(self, task: _Task) -> str:
        return self.actors.get(task.org, f"demo:{task.org}")

    def submit(self, task: _Task, note: str, when: datetime) -> bool:
        """Queue the evidence (files for some, a note for all) and, PREPARE later, the
        submission; says whether the submission falls before the as-of moment."""
        with_file = self.rng.random() < P_FILE
        who = self.actor(task)

        def upload(kind: str) -> Callable[[datetime], None]:
            def step(now: datetime) -> None:
                evidence.store_upload(
                    self.app.store,
                    folder=Path(self.app.settings.evidence_dir),
                    task_id=task.id,
                    filename=f"{task.obligation}-{task.period}-{kind}.pdf",
                    stream=io.BytesIO(tiny_pdf(f"{task.org} {task.obligation} {kind}")),
                    max_bytes=1 << 20,
                    actor=who,
                    now=now,
                    kind=kind,
                )

            return step

        def write_note(now: datetime) -> None:
            actions.add_note(self.app.store, task_id=task.id, note=note, actor=who, now=now)

        def step(now: datetime) -> None:
            actions.transition(
                self.app.store, task_id=task.id, action=Action.SUBMIT, actor=who, now=now
            )

        if when >= self.as_of:
            return False
        for n, kind in enumerate(task.kinds if with_file else ()):
            self.schedule(when - PREPARE + timedelta(minutes=n), upload(kind))
        self.schedule(when - timedelta(minutes=1), write_note)
        return self.schedule(when, step)

    def review(
        self, task: _Task, action: Action, reason: str | None = None
    ) -> Callable[[datetime], None]:
        def step(now: datetime) -> None:
            actions.transition(
                self.app.store, task_id=task.id, action=action, actor=COUNTY, now=now, reason=reason
            )

        return step

    # --- fates -----------------------------------------------------------------------------

    def plan(self, task: _Task, created: datetime) -> None:
        """Decide what happens to a task created at `created`, and queue it."""
        r = self.rng.random()
        note = f"{task.title}（{task.period}）已完成，材料见附件。"
        due_day = task.due_date
        if task.due_at > self.as_of:  # not yet due on the day
            if r < P_EARLY:
                span = max(0.0, (min(task.due_at, self.as_of) - created).total_seconds())
                moment = created + timedelta(seconds=self.rng.random() * span)
                when = self.at(self.workday(local_date(moment, self.tz)), earliest=created)
                if self.submit(task, note, when):
                    self.schedule(self.later(when, self.rng.randint(1, 4)), self.accept(task))
            return
        if task.org in self.to_reject and task.due_at > self.as_of - RECENT:
            # each demo institution finds one recent submission sent back, waiting for it
            self.to_reject.discard(task.org)
            when = self.at(self.workday(due_day - timedelta(days=7), back=True), earliest=created)
            if self.submit(task, note, when):
                reason = self.rng.choice(REJECT_REASONS)
                self.schedule(self.later(when, 1), self.review(task, Action.REJECT, reason))
            return
        if r < P_WAIVED:
            reason = self.rng.choice(WAIVE_REASONS)
            day = self.workday(due_day - timedelta(days=self.rng.randint(2, 10)), back=True)
            self.schedule(self.at(day, earliest=created), self.review(task, Action.WAIVE, reason))
        elif r < P_NEVER:
            return
        elif r < P_LATE:
            day = self.workday(due_day + timedelta(days=self.rng.randint(1, 12)))
            when = self.at(day, earliest=created)
            if self.submit(task, note, when):
                self.schedule(self.later(when, self.rng.randint(1, 4)), self.accept(task))
        else:
            day = self.workday(due_day - timedelta(days=self.rng.randint(0, 10)), back=True)
            when = self.at(day, earliest=created)
            if not self.submit(task, note, when):
                return
            if r >= P_REJECTED:
                self.schedule(self.later(when, self.rng.randint(1, 5)), self.accept(task))
                return
            reason = self.rng.choice(REJECT_REASONS)
            rejected = self.later(when, self.rng.randint(1, 3))
            if not self.schedule(rejected, self.review(task, Action.REJECT, reason)):
                return
            again = self.later(rejected, self.rng.randint(1, 4))
            fixed = f"已按审核意见补充：{reason.rstrip('。')}。"
            if self.submit(task, fixed, again):
                self.schedule(self.later(again, self.rng.randint(1, 3)), self.accept(task))

    def accept(self, task: _Task) -> Callable[[datetime], None]:
        return self.review(task, Action.ACCEPT)

    def plan_death_chain(self, task: _Task, occurred: date) -> None:
        """The chain is scripted: the notification goes in on time and is accepted; the
        in-hospital review is in preparation (a draft note, not submitted); the county review
        has not started."""
        if task.obligation.endswith("death-notify"):
            when = self.at(self.app.calendar.add_workdays(occurred, 2))
            note = "已于规定时限内书面通报县妇幼保健院（附通报单）。"
            if self.submit(task, note, when):
                self.schedule(self.later(when, 1), self.accept(task))
        elif task.obligation.endswith("death-hospital-review"):
            draft = "院内评审材料整理中，拟于截止前召开评审会。"

            def step(now: datetime) -> None:
                actions.add_note(
                    self.app.store, task_id=task.id, note=draft, actor=self.actor(task), now=now
                )

            self.schedule(self.at(self.app.calendar.add_workdays(occurred, 8)), step)

    # --- tasks appear ----------------------------------------------------------------------

    def collect(self, created: datetime, death: date | None = None) -> None:
        """Plan every task created since the last call, in a fixed order (determinism)."""
        with self.app.store.read() as session:
            rows = session.execute(
                select(
                    Task.id,
                    ObligationRow.code,
                    ObligationRow.title,
                    ObligationRow.spec,
                    Organization.code,
                    Task.period_key,
                    Task.due_date,
                    Task.due_at,
                    Task.event_id,
                )
                .join(ObligationRow, ObligationRow.id == Task.obligation_id)
                .join(Organization, Organization.id == Task.org_id)
                .where(Task.id > self.seen)
                .order_by(ObligationRow.code, Organization.code, Task.period_key)
            ).all()
        for row in rows:
            task = _Task(row[0], row[1], row[2], tuple(row[3]["evidence"]), *row[4:])
            self.seen = max(self.seen, task.id)
            if task.event_id is not None and death is not None:
                self.plan_death_chain(task, death)
            else:
                self.plan(task, created)

    def materialize(self, now: datetime) -> None:
        app = self.app
        materialize(app.store, calendar=app.calendar, now=now, tz=self.tz)
        self.collect(now)


def build(
    app: App, *, as_of: date, seed: int = DEFAULT_SEED, catalog: Catalog | None = None
) -> tuple[DemoReport, list[DemoUser]]:
    """Create the demo database in `app` (a fresh database of its own) as the county lived the
    plan up to 09:00 on `as_of`; returns what happened and the demo users (with passwords)."""
    catalog = catalog or app.catalog()
    header = catalog.plans[0].header
    tz = app.tz
    moment = as_of_moment(as_of, app)
    loaded = min(
        datetime.combine(header.issued + timedelta(days=1), AS_OF_TIME, tzinfo=tz),
        moment.astimezone(tz) - timedelta(hours=1),
    ).astimezone(UTC)
    app.init(now=loaded)
    made: list[DemoUser] = []
    for n, (name, role, org, sees) in enumerate(DEMO_USERS):
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))
        users.add_user(
            app.store,
            name=name,
            role=role,
            org=org,
            password=password,
            now=loaded + timedelta(minutes=1 + n),
            actor="cli:demo",
        )
        made.append(DemoUser(name=name, role=role, org=org, password=password, sees=sees))
    history = _History(app, as_of=moment, seed=seed)
    history.materialize(loaded + timedelta(minutes=len(DEMO_USERS) + 1))
    starts = sorted(
        {
            start_of_day(p.start, tz)
            for o in catalog.obligations
            if o.domain.event is None
            for p in o.domain.periods()
        }
    )
    death = as_of - timedelta(days=DEATH_DAYS_BEFORE)
    if death >= local_date(loaded, tz):
        recorded = history.at(app.calendar.next_workday(death + timedelta(days=1)))

        def record(now: datetime) -> None:
            result = actions.record_event(
                app.store,
                kind="maternal-death",
                org=DEATH_ORG,
                occurred_on=death,
                now=now,
                tz=tz,
                calendar=app.calendar,
                actor=COUNTY,
                note="产后出血，抢救无效死亡（演示数据）。",
            )
            history.report.death_event = result.event_id
            history.collect(now, death=death)

        history.schedule(recorded, record)
    for start in starts:
        if loaded < start < moment:
            history.run_until(start)
            history.materialize(start)
    history.run_until(moment)
    materialize(app.store, calendar=app.calendar, now=moment, tz=tz)
    return _tally(app, history.report), made


def _tally(app: App, report: DemoReport) -> DemoReport:
    """Count the history from the database itself (what the pages will show)."""
    with app.store.read() as session:
        tasks = session.execute(
            select(
                Task.id,
                Task.state,
                Task.due_at,
                Task.first_submitted_at,
                Task.submitted_at,
                Task.event_id,
                ObligationRow.code,
                Task.due_date,
            ).join(ObligationRow, ObligationRow.id == Task.obligation_id)
        ).all()
        rejected = set(
            session.scalars(select(AuditEvent.entity_id).where(AuditEvent.action == "task.reject"))
        )
    report.tasks = len(tasks)
    for t in tasks:
        if t.event_id is not None and t.event_id == report.death_event:
            report.death_tasks.append((t.code, t.due_date))
        if t.state == "submitted":
            report.awaiting_review += 1
        if t.due_at > report.as_of:
            continue
        report.due_before += 1
        if t.state == "waived":
            report.waived += 1
        elif t.first_submitted_at is None:
            report.overdue_open += t.state == "open"
        elif t.state == "rejected":
            report.rejected_open += 1
        elif str(t.id) in rejected:
            report.resubmitted += 1
        elif t.first_submitted_at > t.due_at:
            report.late += 1
        else:
            report.on_time += 1
    report.death_tasks.sort(key=lambda x: x[1])
    return report

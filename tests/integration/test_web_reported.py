"""The meeting-date count through the web (issue 17): the API's submit body carries
`occurred_on`, the task page a date field labelled Chinese first; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from duban.bootstrap import App
from duban.engine import actions, users
from duban.settings import Settings
from duban.store.db import Store
from duban.web.app import create_app
from tests.conftest import FIXTURES
from tests.integration.helpers import at
from tests.integration.test_reported_events import REPORT, task_of
from tests.integration.test_web import PASSWORD, Clock, client, signed_in


@pytest.fixture
def site(party: Store, calendar, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=str(party.engine.url.render_as_string(hide_password=False)),
        plan_files=[FIXTURES / "party-plan.yaml"],
        org_files=[FIXTURES / "party-orgs.yaml"],
        evidence_dir=tmp_path / "evidence",
        base_url="http://testserver",
    )
    app = App(settings=settings)
    app.__dict__["store"] = party
    app.__dict__["calendar"] = calendar
    clock = Clock("2022-07-06")
    users.add_user(
        party, name="b1user", role="institution", org="b1", password=PASSWORD, now=clock.now
    )
    return create_app(app, clock=clock)


def meeting_task(store: Store) -> int:
    task = task_of(store, "b1", "party-meeting", "2022-H2")
    assert task is not None
    actions.add_note(store, task_id=task.id, note="会议纪要", actor="b1user", now=at("2022-07-06"))
    return task.id


def test_the_api_submit_body_carries_the_meeting_date(site, party):
    tid = meeting_task(party)
    token = users.create_token(party, name="b1user", label="t", now=at("2022-07-06"))
    c = client(site)
    auth = {"Authorization": f"Bearer {token}"}
    missing = c.post(f"/api/tasks/{tid}/submit", headers=auth)
    assert missing.status_code == 409
    assert missing.json()["detail"] == (
        f"task {tid} needs 会议召开日期 / Date of the meeting: enter the day it happened "
        "(CLI --on YYYY-MM-DD, API occurred_on, the task page's date field)"
    )
    bad = c.post(f"/api/tasks/{tid}/submit", headers=auth, json={"occurred_on": "07/04/2022"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "occurred_on"]
    future = c.post(f"/api/tasks/{tid}/submit", headers=auth, json={"occurred_on": "2022-07-09"})
    assert future.status_code == 409 and "is in the future" in future.json()["detail"]
    far = c.post(f"/api/tasks/{tid}/submit", headers=auth, json={"occurred_on": "5210-09-10"})
    assert far.status_code == 409 and "is in the future" in far.json()["detail"]
    assert task_of(party, "b1", REPORT) is None
    ok = c.post(f"/api/tasks/{tid}/submit", headers=auth, json={"occurred_on": "2022-07-04"})
    assert ok.status_code == 200 and ok.json() == {"id": tid, "state": "submitted"}
    report = task_of(party, "b1", REPORT)
    assert report is not None and report.due_date.isoformat() == "2022-07-19"
    detail = c.get(f"/api/tasks/{tid}", headers=auth).json()
    assert detail["records_event"] == {
        "kind": "party-meeting-held",
        "label": "会议召开日期 / Date of the meeting",
        "event_id": report.event_id,
        "occurred_on": "2022-07-04",
    }
    again = c.post(f"/api/tasks/{tid}/submit", headers=auth, json={"occurred_on": "2022-07-04"})
    assert again.status_code == 409
    schema = c.get("/openapi.json").json()["components"]["schemas"]["SubmitBody"]
    assert schema["properties"]["occurred_on"]["anyOf"][0]["format"] == "date"


def test_the_task_page_asks_for_the_meeting_date_chinese_first(site, party):
    tid = meeting_task(party)
    page, csrf = signed_in(site, "b1user")
    html = page.get(f"/tasks/{tid}").text
    assert (
        '<label>会议召开日期 / Date of the meeting <input type="date" name="occurred_on" '
        'id="occurred-on-input" value="" required></label>'
    ) in html
    r = page.post(f"/tasks/{tid}/submit", data={"csrf": csrf})
    assert r.status_code == 303 and "error=" in r.headers["location"]
    assert "needs 会议召开日期" in page.get(r.headers["location"]).text
    r = page.post(f"/tasks/{tid}/submit", data={"csrf": csrf, "occurred_on": "2022-7-4"})
    assert "is not a date; use YYYY-MM-DD" in page.get(r.headers["location"]).text
    r = page.post(f"/tasks/{tid}/submit", data={"csrf": csrf, "occurred_on": "2022-07-04"})
    assert r.status_code == 303 and "error" not in r.headers["location"]
    assert '<td id="occurred-on">2022-07-04</td>' in page.get(f"/tasks/{tid}").text
    assert task_of(party, "b1", REPORT) is not None

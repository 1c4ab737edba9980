"""The small test plan (tests/fixtures/mini-*.yaml) loaded into a store on both databases."""

from __future__ import annotations

import pytest

from duban.catalog.loader import load_catalog
from duban.domain.workdays import WorkdayCalendar
from duban.engine.adoption import set_adopted
from duban.engine.materialize import materialize
from duban.engine.sync import sync_catalog
from duban.store.db import Store
from tests.conftest import ADOPTED, FIXTURES
from tests.integration.helpers import TZ, at


@pytest.fixture
def mini(store: Store, calendar: WorkdayCalendar) -> Store:
    catalog = load_catalog([FIXTURES / "mini-plan.yaml"], [FIXTURES / "mini-orgs.yaml"], calendar)
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2022-04-01"))
        set_adopted(session, ADOPTED, now=at("2022-04-01"), actor="test")
    return store


@pytest.fixture
def party(store: Store, calendar: WorkdayCalendar) -> Store:
    """The party-branch plan of issue 17 (tests/fixtures/party-*.yaml), tasks made as of
    2022-07-06: the 2022-H1 meeting (due 2022-06-30) overdue, 2022-H2 open."""
    catalog = load_catalog([FIXTURES / "party-plan.yaml"], [FIXTURES / "party-orgs.yaml"], calendar)
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2022-01-01"))
        set_adopted(session, ADOPTED, now=at("2022-01-01"), actor="test")
    materialize(store, calendar=calendar, now=at("2022-07-06"), tz=TZ)
    return store

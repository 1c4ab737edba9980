"""The small test plan (tests/fixtures/mini-*.yaml) loaded into a store on both databases."""

from __future__ import annotations

import pytest

from duban.catalog.loader import load_catalog
from duban.domain.workdays import WorkdayCalendar
from duban.engine.adoption import set_adopted
from duban.engine.sync import sync_catalog
from duban.store.db import Store
from tests.conftest import ADOPTED, FIXTURES
from tests.integration.helpers import at


@pytest.fixture
def mini(store: Store, calendar: WorkdayCalendar) -> Store:
    catalog = load_catalog([FIXTURES / "mini-plan.yaml"], [FIXTURES / "mini-orgs.yaml"], calendar)
    with store.write() as session:
        sync_catalog(session, catalog, now=at("2022-04-01"))
        set_adopted(session, ADOPTED, now=at("2022-04-01"), actor="test")
    return store

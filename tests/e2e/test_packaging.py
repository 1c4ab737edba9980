"""The wheel carries the plans, the example county and the calendar, and works anywhere."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from tests.conftest import ROOT


def test_wheel_ships_bundled_data_and_initialises_from_another_directory(tmp_path: Path):
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("duban-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "duban/_bundled/obligations/xinfeng-2022-mch-safety-year.yaml",
        "duban/_bundled/obligations/nhc-2018-maternal-safety-action.yaml",
        "duban/_bundled/obligations/organizations/xinfeng.yaml",
        "duban/_bundled/calendar/2022.yaml",
        "duban/store/migrations/versions/0001_initial_schema.py",
        "flows/duties.py",  # the Prefect flows: workers import them from the installed wheel
    ):
        assert expected in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("DUBAN_PLAN_FILES", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from duban.cli.main import main; main()",
            "init",
            "--now",
            "2022-04-01",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # every duty of the two bundled plans, read from the plan files themselves
    duties = sum(
        len(yaml.safe_load(f.read_text(encoding="utf-8"))["obligations"])
        for f in (ROOT / "obligations").glob("*.yaml")
    )
    assert f"loaded 2 plans, {duties} obligations" in done.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import duban.resources as r; print(r.bundled('calendar'))"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(site / "duban" / "_bundled" / "calendar")

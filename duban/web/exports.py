"""Any table view as CSV (UTF-8 with BOM, so Excel shows the Chinese) or XLSX (openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return value


def to_csv(columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]) -> bytes:
    """columns: (key, header). Formula-looking text is prefixed so a spreadsheet won't run it."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([header for _, header in columns])
    for row in rows:
        writer.writerow([_safe(_cell(row.get(key))) for key, _ in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def to_xlsx(
    title: str, columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]
) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append([header for _, header in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_safe(_cell(row.get(key))) for key, _ in columns])
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

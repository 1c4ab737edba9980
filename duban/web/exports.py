"""Any table view as CSV (UTF-8 with BOM, so Excel shows the Chinese) or XLSX (openpyxl)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

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


#: a cell starting with one of these is a formula to a spreadsheet (OWASP CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: characters an XLSX cell cannot hold (XML 1.0 forbids them): shown as U+FFFD instead
_ILLEGAL = ILLEGAL_CHARACTERS_RE
_SHEET_TITLE_BAD = re.compile(r"[\[\]:*?/\\]")


def _safe(value: Any) -> Any:
    """Text a spreadsheet shows as text: never a formula, never a character XLSX refuses
    (stored text from before control characters were refused must still export)."""
    if not isinstance(value, str):
        return value
    value = _ILLEGAL.sub("\ufffd", value)
    if value[:1] in FORMULA_START:
        return "'" + value
    return value


def sheet_title(title: str) -> str:
    """A title XLSX accepts: at most 31 characters, none of []:*?/\\."""
    return _SHEET_TITLE_BAD.sub("_", title)[:31] or "sheet"


def to_xlsx(
    title: str, columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]]
) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = sheet_title(title)
    sheet.append([header for _, header in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_safe(_cell(row.get(key))) for key, _ in columns])
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def form_xlsx(form: dict[str, Any], *, org: str = "", year: str = "", month: str = "") -> bytes:
    """A plan's blank form (an obligation's `form:`) as a printable sheet: title, header line,
    bordered columns and rows to fill, footer lines. org/year/month fill the header's blanks."""
    columns: list[str] = form["columns"]
    width = len(columns)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "表格"
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wrap = Alignment(wrap_text=True, vertical="center", horizontal="center")
    sheet.append([form["title"]])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet["A1"].font = Font(bold=True, size=14)
    sheet["A1"].alignment = Alignment(horizontal="center")
    header = form.get("header")
    if header:
        blank = "\u3000" * 3
        sheet.append(
            [header.format(org=org or blank * 2, year=year or blank, month=month or "\u3000" * 2)]
        )
        sheet.merge_cells(
            start_row=sheet.max_row, start_column=1, end_row=sheet.max_row, end_column=width
        )
    sheet.append(columns)
    head_row = sheet.max_row
    for cell in sheet[head_row]:
        cell.font = Font(bold=True)
        cell.alignment = wrap
        cell.border = box
    for _ in range(form.get("rows", 20)):
        sheet.append([""] * width)
        for cell in sheet[sheet.max_row]:
            cell.border = box
        sheet.row_dimensions[sheet.max_row].height = 22
    for line in form.get("footer") or []:
        sheet.append([line])
        row = sheet.max_row
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        sheet.cell(row=row, column=1).alignment = Alignment(wrap_text=True, vertical="top")
        sheet.row_dimensions[row].height = 15 * (1 + len(line) // (width * 6))
    for i, name in enumerate(columns, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = max(6, min(24, 2.2 * len(name)))
    sheet.print_title_rows = f"{head_row}:{head_row}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()

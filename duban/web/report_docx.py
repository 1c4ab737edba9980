"""The quarterly circular (督办通报) as an editable Word document, in the form a county
commission issues one: title, addressees, numbered sections, the issuing body and the date.

The content is duban.engine.circular's read model, the same the printable page shows; the
wording around the figures is a draft the commission's staff edit before it goes out.
"""

from __future__ import annotations

import io
from copy import deepcopy
from datetime import date

from docx import Document
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.text.run import Run

from duban.engine.circular import Circular

DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TITLE_FONT, BODY_FONT, HEADING_FONT = "方正小标宋简体", "仿宋_GB2312", "黑体"
TITLE_PT, BODY_PT, TABLE_PT = 22, 16, 10.5  # 二号, 三号, 五号 (GB/T 9704 sizes)
MAX_REPEATED = 100  # institutions named one per paragraph under "late repeatedly"
SECTIONS = ("一", "二", "三", "四", "五", "六")


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _font(run: Run, name: str, size: float, bold: bool = False) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), name)


def _para(
    doc: object,
    text: str,
    *,
    font: str = BODY_FONT,
    size: float = BODY_PT,
    bold: bool = False,
    align: int | None = None,
    indent: bool = True,
) -> None:
    p = doc.add_paragraph()  # type: ignore[attr-defined]
    if align is not None:
        p.alignment = align
    if indent:
        p.paragraph_format.first_line_indent = Pt(size * 2)
    _font(p.add_run(text), font, size, bold)


def _table(doc: object, head: list[str], rows: list[list[str]]) -> None:
    """A table with a bold header row. Each data row is a copy of one styled row with its
    texts replaced: python-docx's cell API re-reads the whole table per access, which took
    seconds for a province's few hundred rows."""
    table = doc.add_table(rows=2, cols=len(head))  # type: ignore[attr-defined]
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    header, model = table.rows
    for cell, value in zip(header.cells, head, strict=True):
        _font(cell.paragraphs[0].add_run(value), BODY_FONT, TABLE_PT, bold=True)
    for cell in model.cells:
        _font(cell.paragraphs[0].add_run("-"), BODY_FONT, TABLE_PT)
    template = model._tr
    for values in rows:
        tr = deepcopy(template)
        for text, value in zip(tr.iter(qn("w:t")), values, strict=True):
            text.text = value
        template.addprevious(tr)
    template.getparent().remove(template)


def circular_docx(c: Circular, *, base_url: str = "") -> bytes:
    """The circular as a .docx file's bytes."""
    doc = Document()
    _para(
        doc, c.title, font=TITLE_FONT, size=TITLE_PT, align=WD_ALIGN_PARAGRAPH.CENTER, indent=False
    )
    _para(doc, "各有关单位：", indent=False)
    for paragraph in intro(c):
        _para(doc, paragraph)
    for number, (heading, body, table) in enumerate(sections(c)):
        _para(doc, f"{SECTIONS[number]}、{heading}", font=HEADING_FONT)
        for paragraph in body:
            _para(doc, paragraph)
        if table is not None:
            _table(doc, *table)
    _para(doc, "")
    _para(doc, c.issuer, align=WD_ALIGN_PARAGRAPH.RIGHT, indent=False)
    _para(doc, chinese_date(c.issued), align=WD_ALIGN_PARAGRAPH.RIGHT, indent=False)
    if base_url:
        _para(doc, f"（明细见督办系统：{base_url.rstrip('/')}/board）", size=TABLE_PT, indent=False)
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def intro(c: Circular) -> list[str]:
    plans = "、".join(c.plans) if c.plans else "妇幼健康工作方案"
    return [
        f"为推动{plans}各项任务落实，现将{c.period_label}督办事项完成情况通报如下"
        f"（数据截至{chinese_date(c.issued)}）。"
    ]


Table = tuple[list[str], list[list[str]]]


def sections(c: Circular) -> list[tuple[str, list[str], Table | None]]:
    """(heading, paragraphs, table) of each numbered section: the page shows the same."""
    o, b = c.overall, c.before
    overall = (
        f"本季度应完成督办任务{o.counted.n}项，其中按时完成{o.on_time.n}项，逾期完成"
        f"{o.late.n}项，逾期未完成{o.overdue.n}项，按时完成率{o.percent}"
        + (f"（上季度{b.percent}）" if b.rate is not None else "（上季度无到期任务）")
        + f"。参与排名机构{c.orgs_ranked}家。"
    )
    ranked = (
        ["名次", "机构", "应完成", "按时", "逾期完成", "逾期未完成", "按时完成率"],
        [
            [
                str(i),
                r.name,
                str(r.rate.counted.n),
                str(r.rate.on_time.n),
                str(r.rate.late.n),
                str(r.rate.overdue.n),
                r.rate.percent,
            ]
            for i, r in enumerate(c.ranked, 1)
        ],
    )
    more = c.orgs_ranked - len(c.ranked)
    overdue_note = [
        f"截至{chinese_date(c.issued)}，本季度到期任务中仍有{c.overdue_total}项逾期未完成。"
    ]
    if c.overdue_total > len(c.overdue):
        overdue_note.append(f"下表列出其中{len(c.overdue)}项，其余见督办系统逾期看板。")
    overdue = (
        ["机构", "职责", "条款", "截止日期", "逾期天数"],
        [[t.org_name, t.title, t.clause, t.due.isoformat(), str(t.days)] for t in c.overdue],
    )
    repeated = [
        f"{r.name}：逾期完成{r.rate.late.n}项，逾期未完成{r.rate.overdue.n}项。"
        for r in c.repeated[:MAX_REPEATED]
    ] or ["本季度无多次逾期的单位。"]
    if len(c.repeated) > MAX_REPEATED:
        repeated.append(f"另有{len(c.repeated) - MAX_REPEATED}家，见督办系统按机构排名。")
    clauses = [f"{k.title}（{k.document} {k.clause}）：“{k.quote}”" for k in c.clauses] or [
        "本季度无逾期事项。"
    ]
    return [
        ("总体情况", [overall], None),
        (
            "各单位按时完成率排名",
            [
                f"按按时完成率由低到高排列（共{c.orgs_ranked}家，列出{len(c.ranked)}家）。"
                if more > 0
                else "按按时完成率由低到高排列。"
            ],
            ranked,
        ),
        ("逾期未完成任务", overdue_note, overdue if c.overdue else None),
        ("多次逾期的单位", repeated, None),
        ("相关方案条款", clauses, None),
        (
            "工作要求",
            [
                "请上述单位对照问题清单，认真分析原因，于收到本通报后10个工作日内完成整改，"
                "并将整改情况报县卫生健康委妇幼健康股。",
            ],
            None,
        ),
    ]

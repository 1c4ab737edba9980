"""The completion matrix's cells, written in Python for speed, stay checked and escaped."""

from __future__ import annotations

import pytest

from duban.web import cells, i18n
from duban.web.cells import matrix_row


def test_a_row_links_each_task_and_escapes_what_it_shows() -> None:
    row = matrix_row(
        [(7, "late", '2022-06-05"><script>'), None, (8, "on_time", "2022-07-05")], "zh"
    )
    assert row.count("<td>") == 3 and "<td></td>" in row
    assert 'href="/tasks/7"' in row and 'class="cell c-late"' in row
    assert 'title="逾期完成 2022-07-05"' not in row and 'title="按时完成 2022-07-05"' in row
    assert "<script>" not in row and "&lt;script&gt;" in row and "&quot;&gt;" in row


def test_labels_are_escaped_and_in_the_page_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(i18n.WORDS, "cell:late", ("逾期<交>", "late"))
    cells._parts.cache_clear()
    try:
        zh = matrix_row([(7, "late", "2022-06-05")], "zh")
        assert "逾期&lt;交&gt;" in zh and "<交>" not in zh
        assert ">late</a>" in matrix_row([(7, "late", "2022-06-05")], "en")
    finally:
        cells._parts.cache_clear()


@pytest.mark.parametrize("kind", ['late" onclick="x', "unknown"])
def test_a_kind_that_is_not_an_outcome_is_refused(kind: str) -> None:
    with pytest.raises(KeyError):
        matrix_row([(1, kind, "2022-06-05")], "zh")


def test_an_id_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError):
        matrix_row([("1 onclick=x", "late", "2022-06-05")], "zh")  # type: ignore[list-item]

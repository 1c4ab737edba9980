"""The completion matrix's cells, written in Python for speed, stay escaped."""

from __future__ import annotations

import pytest

from duban.web.deps import matrix_cells


def test_a_row_links_each_task_and_escapes_what_it_shows() -> None:
    row = matrix_cells(
        [(7, "late", '2022-06-05"><script>'), None, (8, "on_time", "2022-07-05")],
        lambda key: {"cell:late": "逾期<交>"}.get(key, key),
    )
    assert row.count("<td>") == 3 and "<td></td>" in row
    assert 'href="/tasks/7"' in row and 'class="cell c-late"' in row
    assert "<script>" not in row and "&lt;script&gt;" in row and "&#34;&gt;" in row
    assert "逾期&lt;交&gt;" in row and "<交>" not in row


@pytest.mark.parametrize("kind", ['late" onclick="x', "unknown"])
def test_a_kind_that_is_not_a_cell_kind_is_refused(kind: str) -> None:
    with pytest.raises(KeyError):
        matrix_cells([(1, kind, "2022-06-05")], lambda key: key)


def test_an_id_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ValueError):
        matrix_cells([("1/../../x", "late", "2022-06-05")], lambda key: key)  # type: ignore[list-item]

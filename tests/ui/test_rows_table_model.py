"""RowsTableModel: the debug pane's tables held in Qt's own items (no Python per painted cell), a
refresh touching only the cells that changed, rows tinted by severity."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import Qt
from qtpy.QtGui import QStandardItemModel

from gym_gui.ui.rows_table_model import ERROR, OK, WARN, Row, RowsTableModel
from gym_gui.ui.table_view import make_table_view


def test_cells_live_in_qt_items_and_no_virtual_is_overridden_in_python(qtbot: Any) -> None:
    for name in ("data", "rowCount", "columnCount", "headerData", "flags", "index", "parent"):
        assert name not in RowsTableModel.__dict__, name  # a painted cell calls no Python
    model = RowsTableModel(("a", "b"))
    model.set_rows([Row(("x", "1")), Row(("y", "2"), WARN)])
    view = make_table_view(model)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    assert isinstance(model, QStandardItemModel)
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(2)] == ["a", "b"]
    assert [[model.cell(r, c) for c in range(2)] for r in range(2)] == [["x", "1"], ["y", "2"]]
    assert model.index(1, 1).data() == "2" and model.texts() == [("x", "1"), ("y", "2")]
    assert model.index(0, 0).data(Qt.ItemDataRole.BackgroundRole) is None  # OK: untinted
    assert model.index(1, 0).data(Qt.ItemDataRole.BackgroundRole) is not None
    assert model.index(1, 0).data(Qt.ItemDataRole.ForegroundRole) is not None


def test_a_refresh_sets_only_what_changed_and_rows_come_and_go_at_the_end(qtbot: Any) -> None:
    model = RowsTableModel(("a", "b", "c"))
    model.set_rows([Row(("x", "1", "p")), Row(("y", "2", "q"))])
    changed: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda tl, br, *_: changed.append((tl.row(), tl.column())))
    model.set_rows([Row(("x", "1", "p")), Row(("y", "3", "q"))])  # one cell
    assert changed == [(1, 1)]
    changed.clear()
    model.set_rows([Row(("x", "1", "p")), Row(("y", "3", "q"))])  # the same rows: nothing
    assert changed == []
    model.set_rows([Row(("x", "1", "p"), ERROR), Row(("y", "3", "q")), Row(("z", "4", "r"))])
    assert model.rowCount() == 3 and model.cell(2, 0) == "z"
    assert model.index(0, 2).data(Qt.ItemDataRole.BackgroundRole) is not None  # the whole row tinted
    model.set_rows([Row(("x", "1", "p"), OK)])
    assert model.rowCount() == 1 and model.index(0, 1).data(Qt.ItemDataRole.BackgroundRole) is None
    assert model.rows() == [Row(("x", "1", "p"), OK)]

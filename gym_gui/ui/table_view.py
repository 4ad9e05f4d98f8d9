"""make_table_view: the read-only QTableView every table of the Qt layer uses."""

from __future__ import annotations

from qtpy.QtCore import QAbstractItemModel
from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableView, QWidget

__all__ = ["make_table_view"]


def make_table_view(model: QAbstractItemModel, parent: QWidget | None = None) -> QTableView:
    """A read-only, row-selecting QTableView with fixed row heights (cheap with many rows). GUI thread; never blocks."""
    view = QTableView(parent)
    view.setModel(model)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setWordWrap(False)
    view.setAlternatingRowColors(True)
    vheader = view.verticalHeader()
    vheader.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    vheader.setDefaultSectionSize(view.fontMetrics().height() + 6)
    vheader.hide()
    hheader = view.horizontalHeader()
    hheader.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    hheader.setStretchLastSection(True)
    return view

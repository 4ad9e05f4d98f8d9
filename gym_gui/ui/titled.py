"""titled(): a view under a one-line caption, the way the tabs and the debug pane group their tables."""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QVBoxLayout, QWidget

__all__ = ["titled"]


def titled(title: str, view: QWidget) -> QWidget:
    """A new widget with ``title`` above ``view`` (which takes the spare height). GUI thread."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(QLabel(title))
    layout.addWidget(view, 1)
    return box

"""OnlineHeader: a new value text of the same width repaints its label only (no relayout of the header),
a wider one widens the label once so nothing is cut, and an unchanged tooltip is not set again."""

from __future__ import annotations

from typing import Any

from qtpy.QtCore import QEvent, QObject

from event_loop_turns import run_turns
from gym_gui.ui.online_header import WIDTH_PAD_PX, OnlineHeader


class EventCounter(QObject):
    """Counts the events of one type an object receives."""

    def __init__(self, kind: QEvent.Type) -> None:
        super().__init__()
        self.kind = kind
        self.count = 0

    def eventFilter(self, _obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt name)
        if event.type() == self.kind:
            self.count += 1
        return False


def shown_header(qtbot: Any) -> OnlineHeader:
    header = OnlineHeader()
    qtbot.addWidget(header)
    header.show()
    qtbot.waitExposed(header)
    return header


def test_a_counter_that_keeps_its_width_does_not_relayout_the_header(qtbot: Any) -> None:
    header = shown_header(qtbot)
    header.set("steps_seen", "100,000")
    run_turns()  # that first text's layout done
    layouts = EventCounter(QEvent.Type.LayoutRequest)
    header.installEventFilter(layouts)
    before = header.relayouts
    for count in range(100_001, 100_200, 7):  # same digit count: the same width class
        header.set("steps_seen", f"{count:,}")
        header.set("step", str(count % 10))
        run_turns()  # the event loop's next turns: a posted LayoutRequest would be delivered
    assert header.relayouts == before
    assert layouts.count == 0
    assert header.text("steps_seen") == "100,197"


def test_a_wider_text_widens_its_label_so_it_is_never_cut(qtbot: Any) -> None:
    header = shown_header(qtbot)
    label = header.values["progress"]
    for text in ("1", "12,345", "120 of 1,000,000 (0.01%), 3 h 12 min left"):
        header.set("progress", text)
        run_turns()
        assert label.width() >= label.fontMetrics().horizontalAdvance(text) + WIDTH_PAD_PX
        assert label.text() == text
    widened = header.relayouts
    header.set("progress", "1")  # narrower: the label keeps its width (no relayout back and forth)
    assert header.relayouts == widened


def test_an_unchanged_tooltip_is_not_set_again(qtbot: Any) -> None:
    header = shown_header(qtbot)
    label = header.values["steps_per_s"]
    changes = EventCounter(QEvent.Type.ToolTipChange)
    label.installEventFilter(changes)
    for _ in range(5):
        header.set_tooltip("steps_per_s", "Now: the worker's heartbeat figure.")
    assert changes.count == 1
    assert header.tooltip("steps_per_s").endswith("Now: the worker's heartbeat figure.")


def test_a_header_that_outgrows_the_tab_scrolls_and_leaves_the_window_its_size(qtbot: Any) -> None:
    from qtpy.QtWidgets import QMainWindow

    from gym_gui.ui.online_tab import AgentOnlineTab

    window = QMainWindow()
    qtbot.addWidget(window)
    tab = AgentOnlineTab("run0", "agent1")
    window.setCentralWidget(tab)
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    run_turns(5)
    size, least_px = window.size(), tab.minimumSizeHint().width()
    scroll = tab.header.parentWidget().parentWidget()  # (the scroll area's viewport, then the area)
    tab.header.set("progress", "1,234,567 of 9,999,999 episodes (12%), about 12 h 34 min left " * 3)
    run_turns(5)
    assert tab.header.width() > window.width()  # the text is not cut: the header is wider ...
    assert window.size() == size and tab.minimumSizeHint().width() == least_px  # ... and scrolls
    assert scroll.horizontalScrollBar().maximum() > 0
    tab.stop()

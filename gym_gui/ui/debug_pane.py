"""DebugPane: the bus's subscriptions, the stats of the proxy, the sink and other sources, and the
bus's OVERFLOW notices. A thin shell: ``gym_gui.live.debug_model.DebugModel`` gathers everything
(Qt-free); the GUI pump ticks it; the pane only shows its rows."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

from qtpy.QtCore import QSize, Qt
from qtpy.QtGui import QCloseEvent, QShowEvent
from qtpy.QtWidgets import QLabel, QSplitter, QTableView, QTabWidget, QVBoxLayout, QWidget

from gym_gui.live.debug_model import NOTICE_HEADERS, SOURCE_HEADERS, SUBSCRIPTION_HEADERS, DebugModel, StatsFn
from gym_gui.qt.gui_pump import GuiPump
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.ui.rows_table_model import RowsTableModel
from gym_gui.ui.table_view import make_table_view
from gym_gui.ui.titled import titled

__all__ = ["DebugPane", "NOTICE_HEADERS", "SOURCE_HEADERS", "SUBSCRIPTION_HEADERS", "StatsFn"]

#: The pane's preferred height: about eight rows of each table under their captions.
PREFERRED_HEIGHT_PX = 260
#: Visual order of the subscription table: the stream filter (its text repeats the subscriber's run
#: and agent) goes last, so the counts sit beside the subscriber id.
_SUBSCRIPTION_VISUAL_ORDER = ("topic", "subscriber", "queued", "capacity", "dropped", "delivered", "stream")
_NOTICES_TAB = "Overflow notices"


def _widen_to_contents(view: QTableView, widths: dict[int, int], columns: Iterable[int] | None = None) -> None:
    """Widen each column to its texts when they grew wider than it was fitted for (``widths``: the
    contents' width last fitted per column), so no text is cut; a column the person resized keeps
    its width until its texts grow. The view scrolls horizontally when the columns are wider.
    ``columns``: only these (None: every column)."""
    header = view.horizontalHeader()
    for col in range(header.count()) if columns is None else columns:
        needed = max(view.sizeHintForColumn(col), header.sectionSizeHint(col))
        if col not in widths:  # the first fit: as wide as the texts (narrower than Qt's default too)
            widths[col] = needed
            header.resizeSection(col, needed)
        elif needed > widths[col]:
            widths[col] = needed
            if header.sectionSize(col) < needed:
                header.resizeSection(col, needed)


class _TextWidths:
    """The widest text of each column in pixels, so a table is measured by Qt (which reads every
    cell through the model, several roles each) only when a column's texts grew wider."""

    __slots__ = ("_advance", "_cache", "fitted")

    _CACHE_MAX = 4096

    def __init__(self, view: QTableView) -> None:
        self._advance = view.fontMetrics().horizontalAdvance
        self._cache: dict[str, int] = {}
        self.fitted: dict[int, int] = {}  # column -> widest text (px) when last measured

    def grown(self, texts: Sequence[Sequence[str]], columns: int) -> list[int]:
        """The columns whose widest text is wider than when last measured (all, the first time);
        they count as measured from now on."""
        cache, advance = self._cache, self._advance
        if len(cache) > self._CACHE_MAX:
            cache.clear()
        widest = [0] * columns
        for cells in texts:
            for col, text in enumerate(cells[:columns]):
                px = cache.get(text)
                if px is None:
                    px = cache[text] = advance(text)
                if px > widest[col]:
                    widest[col] = px
        out = [col for col in range(columns) if col not in self.fitted or widest[col] > self.fitted[col]]
        for col in out:
            self.fitted[col] = widest[col]
        return out


class DebugPane(QWidget):
    """Shows ``DebugModel``'s tables: the bus's subscriptions (one row per topic of each: topic,
    subscriber, queued, capacity, dropped, delivered, stream filter), named stats sources
    (``add_source``: e.g. a TelemetryProxy's or the DbSink's ``stats``) and the OVERFLOW notices
    (per subscription and stream: the lost seq ranges and counts), refreshed every
    ``refresh_interval_ms`` by ``pump`` (the app's GUI pump; without one the pane runs its own) and
    at once when a notice arrives. GUI thread only; stats functions must not block.
    """

    def __init__(self, bus: RunBus, *, refresh_interval_ms: int = 500, sources: Mapping[str, StatsFn] | None = None,
                 pump: GuiPump | None = None, parent: QWidget | None = None) -> None:
        """Build the pane; ``start()`` begins the refreshes. GUI thread; never blocks."""
        super().__init__(parent)
        self.setObjectName("DebugPane")
        self.model = DebugModel(bus, refresh_interval_s=max(1, refresh_interval_ms) / 1000.0, sources=sources)
        self._own_pump = pump is None
        self.pump = GuiPump(parent=self) if pump is None else pump
        self._shown_version = -1
        self._fitted: dict[int, dict[int, int]] = {}
        self._text_widths: dict[int, _TextWidths] = {}
        self._fit_pending = False  # rows changed while the pane was hidden: fit when shown

        self.subscription_model = RowsTableModel(SUBSCRIPTION_HEADERS, self)
        self.source_model = RowsTableModel(SOURCE_HEADERS, self)
        self.notice_model = RowsTableModel(NOTICE_HEADERS, self)
        self.subscription_view = make_table_view(self.subscription_model)
        self.source_view = make_table_view(self.source_model)
        self.notice_view = make_table_view(self.notice_model)
        header = self.subscription_view.horizontalHeader()
        for visual, name in enumerate(_SUBSCRIPTION_VISUAL_ORDER):
            header.moveSection(header.visualIndex(SUBSCRIPTION_HEADERS.index(name)), visual)
        for view in (self.subscription_view, self.source_view, self.notice_view):
            view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
            view.setHorizontalScrollMode(QTableView.ScrollMode.ScrollPerPixel)
        self.status_label = QLabel(self.model.status_text)
        # Side by side: the dock is short, and stacked tables showed two rows each. The sources and
        # the notices share the right side as tabs, each with the dock's full height.
        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(self.source_view, "Proxy, sink and other sources")
        self.side_tabs.addTab(self.notice_view, f"{_NOTICES_TAB} (0)")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(titled("Bus subscriptions", self.subscription_view))
        self.splitter.addWidget(self.side_tabs)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([660, 340])  # the subscriptions have seven columns, the sources three
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.status_label)

    # -- sources ---------------------------------------------------------------------------------
    def add_source(self, name: str, stats_fn: StatsFn) -> None:
        """Show ``stats_fn()`` (a dict) under ``name`` from the next refresh on; replaces a source
        of the same name. GUI thread; never blocks."""
        self.model.add_source(name, stats_fn)

    def remove_source(self, name: str) -> None:
        """Stop showing ``name``; idempotent. GUI thread; never blocks."""
        self.model.remove_source(name)

    def source_names(self) -> list[str]:
        """Names of the sources shown. GUI thread; never blocks."""
        return self.model.source_names()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Refresh now, then every ``refresh_interval_ms`` and on each OVERFLOW notice; idempotent.
        GUI thread; never blocks."""
        if self.model.started:
            return
        waker = self.pump.new_waker()  # a notice ticks the pane alone
        self.model.start(self.pump.clock(), waker=waker)
        self._show()
        self.pump.add(self, waker=waker)
        if self._own_pump:
            self.pump.start()

    def stop(self) -> None:
        """Stop refreshing (the pump no longer ticks the pane); idempotent. GUI thread; never blocks."""
        self.model.stop()
        self.pump.remove(self)
        if self._own_pump:
            self.pump.stop()

    def is_refreshing(self) -> bool:
        """True while the pump refreshes the pane. GUI thread; never blocks."""
        return self.model.started and self in self.pump and self.pump.is_running()

    @property
    def refreshes(self) -> int:
        """Refreshes done since construction. GUI thread; never blocks."""
        return self.model.refreshes

    @property
    def notices_flushed(self) -> int:
        """OVERFLOW notices this pane's refreshes made the bus publish. GUI thread; never blocks."""
        return self.model.notices_flushed

    # -- the pump's view -------------------------------------------------------------------------
    def tick(self, now_s: float) -> None:
        """The pump's tick: take in notices, refresh when due, show what changed. GUI thread."""
        self.model.tick(now_s)
        self._show()

    def next_deadline_s(self, now_s: float) -> float | None:
        """The next refresh (None when stopped). GUI thread."""
        return self.model.next_deadline_s(now_s)

    def refresh(self) -> None:
        """Flush pending OVERFLOW notices, then re-read every stat now. GUI thread; never blocks long."""
        self.model.refresh()
        self._show()

    def _show(self) -> None:
        model = self.model
        if model.version == self._shown_version:
            return
        self._shown_version = model.version
        for qt_model, view, rows in ((self.subscription_model, self.subscription_view, model.subscription_rows),
                                     (self.source_model, self.source_view, model.source_rows),
                                     (self.notice_model, self.notice_view, model.notice_rows)):
            qt_model.set_rows(rows)
        self._fit()
        notices = f"{_NOTICES_TAB} ({model.notice_count()})"
        if self.side_tabs.tabText(1) != notices:  # (a tab text set relayouts the tab bar, same text or not)
            self.side_tabs.setTabText(1, notices)
        self.status_label.setText(model.status_text)

    def _fit(self) -> None:
        """Widen the columns whose texts grew (measured by Qt only then); while the pane is hidden,
        at its next show."""
        if not self.isVisible():
            self._fit_pending = True
            return
        self._fit_pending = False
        for qt_model, view in ((self.subscription_model, self.subscription_view),
                               (self.source_model, self.source_view), (self.notice_model, self.notice_view)):
            texts = self._text_widths.get(id(view))
            if texts is None:
                texts = self._text_widths[id(view)] = _TextWidths(view)
            grown = texts.grown(qt_model.texts(), qt_model.columnCount())
            if grown:
                _widen_to_contents(view, self._fitted.setdefault(id(view), {}), grown)

    # -- Qt --------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt name)
        """Fit the columns to what changed while the pane was hidden. GUI thread; never blocks long."""
        super().showEvent(event)
        if self._fit_pending:
            self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        """Tall enough for several rows of each table (a dock starts at its widget's hint). GUI thread."""
        return QSize(900, PREFERRED_HEIGHT_PX)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt name)
        """Stop refreshing when the pane closes. GUI thread; never blocks."""
        self.stop()
        super().closeEvent(event)

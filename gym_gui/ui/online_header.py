"""OnlineHeader: the Online tab's counters, each with a caption and a tooltip that says what it counts."""

from __future__ import annotations

from typing import Any, Mapping

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QGridLayout, QLabel, QWidget

from gym_gui.live.run_progress import fmt_count, fmt_duration, fmt_number

__all__ = ["HEADER_FIELDS", "HEADER_TOOLTIPS", "OnlineHeader", "summary_text"]

#: Header keys and their captions, in display order.
HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("status", "Status"),
    ("env", "Env"),
    ("progress", "Episodes done"),
    ("episode", "Episode"),
    ("step", "Step"),
    ("last_reward", "Last reward"),
    ("episode_return", "Return so far"),
    ("steps_per_s", "Steps/s"),
    ("steps_seen", "Steps seen"),
    ("episodes_seen", "Episodes seen"),
    ("dropped", "Dropped"),
    ("backfilled", "Backfilled"),
    ("pending", "Pending backfill"),
    ("unrecoverable", "Unrecoverable"),
)

#: What each counter counts (its caption's and value's tooltip).
HEADER_TOOLTIPS: dict[str, str] = {
    "status": "The run's state: waiting for the worker, running, stalled (no events for a while), or how it ended.",
    "env": "The environment the worker runs (RUN_STARTED's env_id).",
    "progress": "Episodes finished of the total the run announced (its config's 'episodes'), the percentage, "
                "and the time left at the mean pace since the run started. Without a total: episodes finished.",
    "episode": "Episode index (0-based) of the newest step shown.",
    "step": "Step index (0-based) within that episode of the newest step shown.",
    "last_reward": "Reward of the newest step shown.",
    "episode_return": "Sum of the rewards of the newest episode's steps seen so far.",
    "steps_per_s": "Environment steps per second: the worker's own figure from its latest heartbeat, "
                   "else the rate steps reach this tab.",
    "steps_seen": "Steps this tab received since it opened, live and backfilled (each once).",
    "episodes_seen": "Finished episodes this tab received since it opened, live and backfilled (each once).",
    "dropped": "Steps and episodes the live buffer dropped because the view fell behind. They are still "
               "stored in SQLite; backfill reads them back.",
    "backfilled": "Events (steps AND episodes) read back from SQLite instead of the live bus: what the live "
                  "buffer dropped, what a stall skipped, and the stream's history from before this tab "
                  "opened. It counts episodes too, so it can be larger than Steps seen.",
    "pending": "Sequence numbers of lost ranges not read back yet. An upper bound on events: a range can "
               "span sequence numbers of the stream's other record kinds.",
    "unrecoverable": "Sequence numbers given up: not in SQLite after the run ended (e.g. malformed records the "
                     "sink set aside). An upper bound on events, like Pending backfill.",
}

_SUMMARY_KEYS: tuple[tuple[str, str, str], ...] = (
    ("episodes", "episodes", "count"),
    ("steps", "steps", "count"),
    ("mean_return", "mean return", "number"),
    ("mean_return_last_100", "mean return (last 100)", "number"),
    ("best_return", "best return", "number"),
    ("success_rate", "success rate", "percent"),
    ("greedy_success_rate", "greedy success rate", "percent"),
    ("greedy_mean_return", "greedy mean return", "number"),
    ("duration_s", "took", "duration"),
    ("cancelled_by", "cancelled by", "text"),
    ("error", "error", "text"),
)


def _summary_value(value: Any, kind: str) -> str:
    if kind == "count":
        return fmt_count(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    if kind == "percent" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{100 * value:.1f}%".replace(".0%", "%")
    if kind == "duration":
        return fmt_duration(value)
    if kind == "number":
        return fmt_number(value)
    return str(value)


def summary_text(payload: Mapping[str, Any]) -> str:
    """The line shown after RUN_COMPLETED: its summary in words, the signal, the last stderr line. Pure."""
    parts: list[str] = []
    summary = payload.get("summary")
    if isinstance(summary, Mapping):
        for key, caption, kind in _SUMMARY_KEYS:
            value = summary.get(key)
            if value is not None:
                text = _summary_value(value, kind)
                parts.append(f"{text} {caption}" if kind == "count" else f"{caption} {text}")
    signal = payload.get("signal")
    if signal:
        parts.append(f"signal {signal}")
    tail = payload.get("stderr_tail")
    if isinstance(tail, str) and tail.strip():
        parts.append(f"stderr: {tail.strip().splitlines()[-1][:200]}")
    return "Run ended: " + ", ".join(parts) if parts else ""


#: A value label's width grows in steps of this many digits' width (so a counter that gains a digit
#: relayouts the header once in a while, not at every new width).
WIDTH_STEP_DIGITS = 3
#: Room beside a value's text (px): the label's margins and the text cursor of a selectable label.
WIDTH_PAD_PX = 6


class OnlineHeader(QWidget):
    """A grid of caption: value pairs (HEADER_FIELDS), ``per_row`` pairs a row. GUI thread only.

    Each value label has a fixed size that only grows, in steps of ``WIDTH_STEP_DIGITS`` digits,
    when a new text is wider than it: a new text of the same width repaints that label alone, where
    a label whose size may change makes every text change relayout the whole header (and the tab
    around it) first. ``relayouts`` counts the widenings.
    """

    def __init__(self, per_row: int = 5, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(12)
        self.values: dict[str, QLabel] = {}
        for i, (key, caption) in enumerate(HEADER_FIELDS):
            row, col = divmod(i, per_row)
            name = QLabel(f"{caption}:")
            name.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            name.setToolTip(HEADER_TOOLTIPS[key])
            value = QLabel("-")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setObjectName(f"value_{key}")
            value.setToolTip(HEADER_TOOLTIPS[key])
            grid.addWidget(name, row, 2 * col)
            grid.addWidget(value, row, 2 * col + 1)
            self.values[key] = value
        grid.setColumnStretch(2 * per_row, 1)  # spare width goes to an empty last column: no value is cut
        self.relayouts = 0
        metrics = self.fontMetrics()
        self._step_px = max(1, metrics.horizontalAdvance("0" * WIDTH_STEP_DIGITS))
        self._height_px = max(label.sizeHint().height() for label in self.values.values())
        for label in self.values.values():
            label.setFixedHeight(self._height_px)
            label.setFixedWidth(self._width_for(label.text()))

    def _width_for(self, text: str) -> int:
        needed = self.fontMetrics().horizontalAdvance(text) + WIDTH_PAD_PX
        return -(-needed // self._step_px) * self._step_px

    def _fit(self, label: QLabel, text: str) -> None:
        """Widen ``label`` when ``text`` needs more room than it has (never narrower)."""
        if self.fontMetrics().horizontalAdvance(text) + WIDTH_PAD_PX > label.minimumWidth():
            self.relayouts += 1
            label.setFixedWidth(self._width_for(text))

    def set(self, key: str, text: str) -> None:
        """Show ``text`` for ``key`` (no repaint when unchanged). GUI thread; never blocks."""
        label = self.values[key]
        if label.text() != text:
            self._fit(label, text)
            label.setText(text)

    def text(self, key: str) -> str:
        """The value shown for ``key``. GUI thread."""
        return self.values[key].text()

    def set_tooltip(self, key: str, extra: str) -> None:
        """The value's tooltip: what it counts, then ``extra`` (e.g. the worker's stderr). GUI thread."""
        base = HEADER_TOOLTIPS[key]
        tip = f"{base}\n\n{extra}" if extra else base
        label = self.values[key]
        if label.toolTip() != tip:  # (a new tooltip is an event and a relayout check of the label)
            label.setToolTip(tip)

    def tooltip(self, key: str) -> str:
        """The value's tooltip. GUI thread."""
        return self.values[key].toolTip()

"""StatRow: one row of a small stats table (cell texts and a severity), the debug pane's unit (Qt-free)."""

from __future__ import annotations

import attrs

__all__ = ["ERROR", "OK", "WARN", "StatRow"]

#: Row severities: a table tints WARN and ERROR rows.
OK, WARN, ERROR = 0, 1, 2


@attrs.frozen(slots=True)
class StatRow:
    """Cell texts and a severity (OK, WARN or ERROR) that tints the row. Immutable; any thread."""

    cells: tuple[str, ...]
    severity: int = OK

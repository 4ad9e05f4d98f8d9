"""Thread-safe writer of canonical JSONL v1 records (docs/telemetry-jsonl.md). Qt-free.

One :class:`JsonlEmitter` owns one output stream and one ``(run_id, agent_id)`` stream of
records. Every record gets the common fields (``v``, ``kind``, ``run_id``, ``agent_id``, ``seq``,
``ts``); ``seq`` starts at 1 and is assigned under the same lock that writes the line, so the order
of lines on the stream is the order of ``seq`` and lines never interleave, whichever thread emits.

A background thread (:meth:`JsonlEmitter.start_heartbeat`) emits ``heartbeat`` records every
``interval_s`` seconds and flushes lines that waited in a batch for longer than ``batch_delay_s``.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import datetime, timezone
from typing import Any, BinaryIO, Callable, Mapping

__all__ = ["SCHEMA_VERSION", "JsonlEmitter", "to_jsonable", "utc_now_iso", "dumps_line"]

log = logging.getLogger(__name__)

#: Value of the ``"v"`` field of every canonical record.
SCHEMA_VERSION = 1

StatsFn = Callable[[], Mapping[str, Any]]


def utc_now_iso() -> str:
    """Current UTC time, ISO-8601 with microseconds and ``+00:00``. Any thread, never blocks."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _json_default(obj: Any) -> Any:
    """``json.dumps`` hook: numpy scalars/arrays, sets and bytes; anything else becomes its repr."""
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    tolist = getattr(obj, "tolist", None)  # numpy scalar or ndarray
    if callable(tolist):
        return tolist()
    return repr(obj)


def to_jsonable(obj: Any) -> Any:
    """Return a copy of ``obj`` made of JSON types only. Any thread, never blocks.

    numpy scalars and arrays become Python numbers and lists, tuples and sets become lists,
    mapping keys become strings, non-finite floats (NaN, +-inf) become ``None`` (JSONL v1 forbids
    them), bytes are decoded as UTF-8 and unknown objects become their ``repr``.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    converted = _json_default(obj)
    return converted if isinstance(converted, str) else to_jsonable(converted)


#: One shared encoder (``json.dumps`` with options builds a new one per call). Stateless, thread-safe.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_json_default)


def dumps_line(record: Mapping[str, Any]) -> bytes:
    """Encode one record as a compact UTF-8 JSON line ending in ``\\n``. Any thread, never blocks.

    Fast path: ``json.dumps`` with a numpy-aware default; if the record holds NaN or infinity,
    it is first cleaned with :func:`to_jsonable` (non-finite floats become ``null``).
    """
    try:
        text = _ENCODER.encode(record)
    except ValueError:
        text = json.dumps(to_jsonable(record), separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


class JsonlEmitter:
    """Writes records as JSON lines to a binary stream, with per-stream ``seq`` numbers.

    Thread-safe: :meth:`emit`, :meth:`flush` and the heartbeat thread share one lock. With
    ``batch_lines == 1`` every line is flushed as it is written; with a larger batch, lines are
    flushed when the batch is full, when the oldest waiting line is older than ``batch_delay_s``
    (checked on each emit and by the background thread), on ``flush=True`` and on :meth:`close`.
    Writes block when the reader of the stream does not keep up (a full pipe); that is the
    back-pressure the proxy relies on.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        run_id: str,
        agent_id: str,
        batch_lines: int = 1,
        batch_delay_s: float = 0.05,
    ) -> None:
        if not run_id or not agent_id:
            raise ValueError("run_id and agent_id must be non-empty strings")
        if batch_lines < 1:
            raise ValueError("batch_lines must be >= 1")
        self._stream = stream
        self.run_id = run_id
        self.agent_id = agent_id
        self._batch_lines = batch_lines
        self._batch_delay_s = max(0.0, batch_delay_s)
        self._lock = threading.Lock()
        self._seq = 0
        self._pending: list[bytes] = []
        self._pending_since = 0.0
        self._closed = False
        self._lines_written = 0
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = threading.Event()
        self._hb_interval_s = 0.0
        self._hb_stats: StatsFn | None = None
        self.write_error: BaseException | None = None

    # ------------------------------------------------------------------ properties
    @property
    def seq(self) -> int:
        """The last ``seq`` assigned (0 before the first record). Any thread."""
        return self._seq

    @property
    def lines_written(self) -> int:
        """Number of lines handed to the stream so far (flushed or not). Any thread."""
        return self._lines_written

    # ------------------------------------------------------------------ writing
    def emit(self, kind: str, fields: Mapping[str, Any] | None = None, *, flush: bool | None = None) -> int:
        """Write one record of ``kind`` with the common fields plus ``fields``; return its seq.

        Any thread. Blocks while another thread writes, and while the stream's reader is slow.
        ``flush=True`` forces the batch out now; ``None`` applies the batching rule.
        Raises ``RuntimeError`` after :meth:`close`, ``OSError`` (e.g. ``BrokenPipeError``) from
        the stream.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("JsonlEmitter is closed")
            self._seq += 1
            record: dict[str, Any] = {
                "v": SCHEMA_VERSION,
                "kind": kind,
                "run_id": self.run_id,
                "agent_id": self.agent_id,
                "seq": self._seq,
                "ts": utc_now_iso(),
            }
            if fields:
                for key, value in fields.items():
                    if key not in record:
                        record[key] = value
            line = dumps_line(record)
            now = time.monotonic()
            if not self._pending:
                self._pending_since = now
            self._pending.append(line)
            self._lines_written += 1
            if (
                flush
                or self._batch_lines == 1
                or len(self._pending) >= self._batch_lines
                or (flush is None and now - self._pending_since >= self._batch_delay_s)
            ):
                self._write_pending_locked()
            return self._seq

    def flush(self) -> None:
        """Write and flush every waiting line. Any thread; blocks like :meth:`emit`."""
        with self._lock:
            if not self._closed:
                self._write_pending_locked()

    def _write_pending_locked(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            try:
                self._stream.write(data)
                self._stream.flush()
            except BaseException as exc:
                self.write_error = exc
                raise

    def _flush_if_stale(self) -> None:
        with self._lock:
            if self._pending and not self._closed and time.monotonic() - self._pending_since >= self._batch_delay_s:
                self._write_pending_locked()

    # ------------------------------------------------------------------ heartbeat
    def start_heartbeat(self, interval_s: float, stats_fn: StatsFn) -> None:
        """Start the background thread that emits ``heartbeat`` every ``interval_s`` seconds.

        Call from the owning thread, once, after ``run_started``. ``stats_fn`` is called on the
        heartbeat thread and must be cheap and thread-safe (reading counters is fine). The first
        heartbeat comes ``interval_s`` after this call. ``interval_s <= 0`` disables heartbeats
        (the thread still flushes stale batches). Never blocks.
        """
        if self._hb_thread is not None:
            raise RuntimeError("heartbeat already started")
        self._hb_interval_s = float(interval_s)
        self._hb_stats = stats_fn
        self._hb_stop.clear()
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="jsonl-heartbeat", daemon=True)
        self._hb_thread.start()

    def stop_heartbeat(self) -> None:
        """Stop and join the heartbeat thread; no heartbeat is emitted after this returns.

        Call from the owning thread. Blocks until the thread has finished its current line.
        """
        thread = self._hb_thread
        if thread is None:
            return
        self._hb_stop.set()
        thread.join()
        self._hb_thread = None

    def _heartbeat_loop(self) -> None:
        interval = self._hb_interval_s
        # Wake often enough to emit heartbeats on time and to flush batches that wait too long.
        tick = 1.0
        if interval > 0:
            tick = min(tick, interval)
        if self._batch_lines > 1 and self._batch_delay_s > 0:
            tick = min(tick, self._batch_delay_s)
        next_hb = time.monotonic() + interval if interval > 0 else math.inf
        while not self._hb_stop.wait(max(0.0, min(tick, next_hb - time.monotonic()))):
            try:
                now = time.monotonic()
                if now >= next_hb:
                    stats = dict(self._hb_stats()) if self._hb_stats is not None else {}
                    self.emit("heartbeat", {"interval_s": interval, "stats": stats}, flush=True)
                    # Keep the cadence; skip missed beats rather than bursting after a stall.
                    next_hb += interval
                    if next_hb <= now:
                        next_hb = now + interval
                elif self._batch_lines > 1:
                    self._flush_if_stale()
            except (BrokenPipeError, RuntimeError, ValueError, OSError) as exc:
                log.warning("heartbeat thread stops: %s", exc)
                return
            except Exception:  # pragma: no cover - a stats_fn bug must not kill the worker
                log.exception("heartbeat failed; continuing")

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Stop the heartbeat, flush what waits and refuse further records. Owning thread; blocks.

        Does not close the underlying stream. Idempotent.
        """
        self.stop_heartbeat()
        with self._lock:
            if self._closed:
                return
            try:
                self._write_pending_locked()
            finally:
                self._closed = True

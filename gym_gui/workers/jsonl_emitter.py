"""Thread-safe writer of canonical JSONL v1 records (docs/telemetry-jsonl.md). Qt-free.

One :class:`JsonlEmitter` owns one output stream and one ``(run_id, agent_id)`` stream of
records. Every record gets the common fields (``v``, ``kind``, ``run_id``, ``agent_id``, ``seq``,
``ts``); ``seq`` starts at 1 and is assigned under the same lock that appends the line, so the
order of lines on the stream is the order of ``seq`` and lines never interleave, whichever thread
emits.

Cost per record (docs/performance.md "Emitter"): the record's own fields are encoded once
(orjson, stdlib fallback: :mod:`gym_gui.workers.jsonl_encoding`); the common fields come from a
byte template per kind that already holds the ids and the current UTC second, so a record costs
one ``%`` format for ``seq`` and the microseconds. Lines are batched in one ``bytearray`` and
handed to the stream in one ``write`` + ``flush`` per batch.

Batching (on by default): a batch is due ``max_delay_ms`` after the record before its first line;
it is written when it holds ``batch_lines`` lines, by the first record emitted at or after its
due time (so no line waits longer while the loop keeps emitting, and a loop slower than one
record per ``max_delay_ms`` writes every line at once), on ``flush=True``, for ``run_started``,
``run_completed`` and ``heartbeat`` records, on :meth:`JsonlEmitter.flush` and
:meth:`JsonlEmitter.close`, and at interpreter exit. The clock read that stamps ``ts`` is the one the bound is checked with, so the
check costs a comparison. A loop that stops emitting while lines wait is covered by the
heartbeat thread (:meth:`JsonlEmitter.start_heartbeat`, also with no heartbeats:
:meth:`JsonlEmitter.start_flusher`): it sleeps until the waiting batch is due and writes it, and
sleeps without a timeout while nothing waits (no polling).
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import time
import weakref
from typing import Any, BinaryIO, Callable, Mapping

from gym_gui.workers.jsonl_batch import make_batch_core
from gym_gui.workers.jsonl_encoding import SCHEMA_VERSION, dumps_line, to_jsonable, utc_now_iso

__all__ = [
    "DEFAULT_BATCH_LINES",
    "DEFAULT_MAX_DELAY_MS",
    "SCHEMA_VERSION",
    "JsonlEmitter",
    "dumps_line",
    "to_jsonable",
    "utc_now_iso",
]

log = logging.getLogger(__name__)

#: Lines per batch unless the constructor says otherwise (about 24-96 KB of step lines).
DEFAULT_BATCH_LINES = 256
#: The longest a line waits in a batch unless the constructor says otherwise.
DEFAULT_MAX_DELAY_MS = 5.0

StatsFn = Callable[[], Mapping[str, Any]]


class JsonlEmitter:
    """Writes records as JSON lines to a binary stream, with per-stream ``seq`` numbers.

    Thread-safe: :meth:`emit`, :meth:`flush` and the heartbeat thread share one lock. Lines wait
    in a batch as described in the module docstring; ``batch_lines=1`` writes and flushes every
    line. Writes block when the reader of the stream does not keep up (a full pipe); that is the
    back-pressure the proxy relies on.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        run_id: str,
        agent_id: str,
        batch_lines: int = DEFAULT_BATCH_LINES,
        max_delay_ms: float = DEFAULT_MAX_DELAY_MS,
    ) -> None:
        if not isinstance(run_id, str) or not isinstance(agent_id, str) or not run_id or not agent_id:
            raise ValueError("run_id and agent_id must be non-empty strings")
        if batch_lines < 1:
            raise ValueError("batch_lines must be >= 1")
        if not max_delay_ms >= 0 or math.isinf(max_delay_ms):
            raise ValueError("max_delay_ms must be a finite number >= 0")
        self.run_id = run_id
        self.agent_id = agent_id
        self.batch_lines = int(batch_lines)
        self.max_delay_ms = float(max_delay_ms)
        self._wake = threading.Event()
        self._core = make_batch_core(stream, run_id=run_id, agent_id=agent_id, batch_lines=int(batch_lines),
                                     delay_us=int(max_delay_ms * 1000), wake=self._wake)
        self.emit = self._core.emit  # type: ignore[method-assign]  # the closure itself: no bound method per call
        self.emit_step = self._core.emit_step  # type: ignore[method-assign]
        self._hb_thread: threading.Thread | None = None
        self._hb_stop = False
        self._hb_interval_s = 0.0
        self._hb_stats: StatsFn | None = None
        self._flusher_wakeups = 0
        _LIVE_EMITTERS.add(self)

    # ------------------------------------------------------------------ properties
    @property
    def seq(self) -> int:
        """The last ``seq`` assigned (0 before the first record). Any thread, never blocks."""
        return self._core.seq()

    @property
    def lines_written(self) -> int:
        """Number of lines emitted so far (written to the stream or waiting in the batch). Any thread."""
        return self._core.seq()

    @property
    def pending_lines(self) -> int:
        """Lines waiting in the batch right now. Any thread, never blocks."""
        return self._core.pending_lines()

    @property
    def batches_written(self) -> int:
        """Number of ``write`` + ``flush`` calls made on the stream so far. Any thread, never blocks."""
        return self._core.batches_written()

    @property
    def flusher_wakeups(self) -> int:
        """How many times the heartbeat / flusher thread woke up so far (it never polls). Any thread."""
        return self._flusher_wakeups

    @property
    def write_error(self) -> BaseException | None:
        """The exception the stream raised on the last failed write, if any. Any thread."""
        return self._core.write_error

    # ------------------------------------------------------------------ writing
    def emit(self, kind: str, fields: Mapping[str, Any] | None = None, *, flush: bool | None = None) -> int:
        """Write one record of ``kind`` with the common fields plus ``fields``; return its seq.

        Any thread. Blocks while another thread writes, and while the stream's reader is slow.
        ``flush=True`` writes the batch now; ``None`` (default) applies the batching rules and
        writes ``run_started``, ``run_completed`` and ``heartbeat`` at once; ``False`` applies
        the batching rules only. Keys of ``fields`` that name a common field are dropped.
        Raises ``RuntimeError`` after :meth:`close`, ``TypeError`` for a ``kind`` that is not a
        non-empty str, ``OSError`` (e.g. ``BrokenPipeError``) from the stream, and what the
        stdlib encoder raises for a value no encoder takes (then no ``seq`` is used).
        (Each instance replaces this method by its closure, which does exactly this.)
        """
        return self._core.emit(kind, fields, flush=flush)  # pragma: no cover - shadowed per instance

    def emit_step(self, episode_index: int, step_index: int, action: Any, observation: Any, reward: float,
                  terminated: bool, truncated: bool, info: Any, render_payload: Any) -> int:
        """``emit("step", step_fields(episode_index, ..., render_payload))``, for less: return its seq.

        The same line (``gym_gui.workers.records.step_fields``' keys and order) and the same
        batching rules, without building the caller's dict, checking its keys for common fields
        or looking up the kind's template: the cheapest way to write a step (docs/performance.md
        "Emitter"). Any thread; blocks and raises like :meth:`emit`.
        (Each instance replaces this method by its closure, which does exactly this.)
        """
        return self._core.emit_step(episode_index, step_index, action, observation, reward, terminated,  # pragma: no cover
                                    truncated, info, render_payload)

    def flush(self) -> None:
        """Write and flush every waiting line. Any thread; blocks like :meth:`emit`."""
        self._core.flush()

    # ------------------------------------------------------------------ heartbeat / flusher thread
    def start_heartbeat(self, interval_s: float, stats_fn: StatsFn | None) -> None:
        """Start the background thread that emits ``heartbeat`` every ``interval_s`` seconds.

        Call from the owning thread, once, after ``run_started``. ``stats_fn`` is called on the
        heartbeat thread and must be cheap and thread-safe (reading counters is fine). The first
        heartbeat comes ``interval_s`` after this call. ``interval_s <= 0`` disables heartbeats;
        the thread still writes a batch that waits longer than ``max_delay_ms`` because the
        loop stopped emitting. A daemon thread; :meth:`stop_heartbeat` or :meth:`close` stops it.
        Never blocks.
        """
        if self._hb_thread is not None:
            raise RuntimeError("heartbeat already started")
        self._hb_interval_s = float(interval_s)
        self._hb_stats = stats_fn
        self._hb_stop = False
        self._hb_thread = threading.Thread(target=self._heartbeat_loop, name="jsonl-heartbeat", daemon=True)
        self._hb_thread.start()

    def start_flusher(self) -> None:
        """Start the background thread without heartbeats: it only writes batches that are due.

        Owning thread, once (instead of :meth:`start_heartbeat`). Never blocks.
        """
        self.start_heartbeat(0.0, None)

    def stop_heartbeat(self) -> None:
        """Stop and join the heartbeat thread; no heartbeat is emitted after this returns.

        Call from the owning thread. Blocks until the thread has finished its current line.
        """
        thread = self._hb_thread
        if thread is None:
            return
        self._hb_stop = True
        self._wake.set()
        thread.join()
        self._hb_thread = None

    def _heartbeat_loop(self) -> None:
        interval = self._hb_interval_s
        delay_s = self.max_delay_ms / 1000
        next_hb = time.monotonic() + interval if interval > 0 else math.inf
        core = self._core
        while True:
            look = core.flusher_look()  # clears the wake event, so check the stop flag after it
            if look is None or self._hb_stop:
                return
            batches, due_s = look
            # Sleep until the waiting batch is due (at most max_delay: the wall clock may step),
            # the next heartbeat, or a wake-up (lines start waiting, or stop).
            timeout = min(min(due_s, delay_s) if due_s != math.inf else math.inf, next_hb - time.monotonic())
            if timeout > 0:
                self._wake.wait(None if timeout == math.inf else timeout)
            self._flusher_wakeups += 1
            if self._hb_stop:
                return
            try:
                if time.monotonic() >= next_hb:
                    stats = dict(self._hb_stats()) if self._hb_stats is not None else {}
                    self.emit("heartbeat", {"interval_s": interval, "stats": stats}, flush=True)
                    # Keep the cadence; skip missed beats rather than bursting after a stall.
                    next_hb += interval
                    if next_hb <= time.monotonic():
                        next_hb = time.monotonic() + interval
                elif due_s != math.inf:
                    core.write_if_unchanged(batches)  # the batch seen above is due unless written since
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
        try:
            self._core.close()
        finally:
            _LIVE_EMITTERS.discard(self)


#: Emitters not yet closed, flushed at interpreter exit (weak: an emitter can still be collected).
_LIVE_EMITTERS: weakref.WeakSet[JsonlEmitter] = weakref.WeakSet()


@atexit.register
def _flush_live_emitters() -> None:
    for emitter in list(_LIVE_EMITTERS):
        emitter._core.flush_at_exit()

"""The hot path of :class:`gym_gui.workers.jsonl_emitter.JsonlEmitter`: lines, seq and batches. Qt-free.

:func:`make_batch_core` builds the emitter's functions as closures over one set of local
variables (a closure cell is read and written faster than an instance attribute, and a call
through an instance attribute makes no bound method), guarded by one lock. A record costs:
encoding its own fields (one orjson call, outside the lock), one clock read, a lookup of the
byte template of its kind (the ``v``/``kind``/``run_id``/``agent_id`` text and the current UTC
second, renewed once per second) and one ``%`` format of ``seq`` and the microseconds. The
line is appended to the batch (a ``bytearray``); the fields' ``{`` becomes the ``,`` that
continues the common fields.

When a batch is written (the rules are in the emitter's module docstring): it holds
``batch_lines`` lines; the record comes at or after the batch's due time
(``not previous <= now < deadline``, with ``deadline`` = the record before the batch's first
line + ``delay_us``, set when the batch opens; a clock that stepped back also writes);
``flush=True``; a flushing kind; :meth:`BatchCore.flush`, :meth:`BatchCore.close`. The flusher thread uses
:meth:`BatchCore.flusher_look` and :meth:`BatchCore.write_if_unchanged`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, BinaryIO, Callable, Mapping

from gym_gui.full_write import write_all
from gym_gui.workers.jsonl_encoding import (
    HAVE_ORJSON,
    SCHEMA_VERSION,
    UtcSecondClock,
    _json_default,
    encode_object,
    stdlib_encode_object,
)

__all__ = ["BatchCore", "make_batch_core"]

_COMMON_KEYS = frozenset({"v", "kind", "run_id", "agent_id", "seq", "ts"})
#: Kinds written at once by default (``flush=None``): the lifecycle records and heartbeats.
FLUSHING_KINDS = frozenset({"run_started", "run_completed", "heartbeat"})
_MAX_CACHED_KINDS = 64
_COMMA = 0x2C  # b","
_DOT = 0x2E  # b"."


def _template_text(value: str) -> bytes:
    """A JSON string literal (the records' encoder), ``%``-escaped for a bytes format template."""
    return encode_object(value).replace(b"%", b"%%")


def _fields_line_stdlib(fields: Mapping[str, Any], default: Any = None, option: int = 0) -> bytes:
    """The reference encoding of ``fields`` plus ``\\n`` (the signature of ``orjson.dumps``)."""
    return stdlib_encode_object(fields) + b"\n"


_fields_line: Callable[..., bytes]
if HAVE_ORJSON:
    import orjson

    _fields_line = orjson.dumps
    _ORJSON_ERROR: type[Exception] = orjson.JSONEncodeError
    _NEWLINE = orjson.OPT_APPEND_NEWLINE
else:  # pragma: no cover - exercised by the orjson-less run
    _fields_line = _fields_line_stdlib
    _ORJSON_ERROR = TypeError  # the stdlib already failed: the retry raises the same error
    _NEWLINE = 0


def _clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A plain dict of ``fields`` without the keys of the common fields (those are the emitter's)."""
    return {k: v for k, v in fields.items() if k not in _COMMON_KEYS}


class BatchCore:
    """The closures of one emitter (see :func:`make_batch_core`); a plain holder of functions.

    ``emit``, ``flush``, ``close``, ``flusher_look``, ``write_if_unchanged`` and
    ``flush_at_exit`` may be called from any thread; they serialise on the emitter's lock and
    block while the stream's reader is slow. ``seq``, ``pending_lines`` and ``batches_written``
    read counters without the lock.
    """

    __slots__ = ("emit", "emit_step", "flush", "close", "flusher_look", "write_if_unchanged", "flush_at_exit",
                 "seq", "pending_lines", "batches_written", "write_error")

    def __init__(self, *, emit: Callable[..., int], emit_step: Callable[..., int], flush: Callable[[], None],
                 close: Callable[[], None],
                 flusher_look: Callable[[], "tuple[int, float] | None"], write_if_unchanged: Callable[[int], None],
                 flush_at_exit: Callable[[], None], seq: Callable[[], int], pending_lines: Callable[[], int],
                 batches_written: Callable[[], int]) -> None:
        self.emit = emit
        self.emit_step = emit_step
        self.flush = flush
        self.close = close
        self.flusher_look = flusher_look
        self.write_if_unchanged = write_if_unchanged
        self.flush_at_exit = flush_at_exit
        self.seq = seq
        self.pending_lines = pending_lines
        self.batches_written = batches_written
        self.write_error: BaseException | None = None


def make_batch_core(stream: BinaryIO, *, run_id: str, agent_id: str, batch_lines: int, delay_us: int,
                    wake: threading.Event) -> BatchCore:
    """Build the emitter's functions for ``stream``. ``wake`` is set when lines start waiting
    while the flusher thread is parked. Any thread; never blocks."""
    lock = threading.Lock()
    acquire = lock.acquire
    release = lock.release
    clock = UtcSecondClock()
    ids_template = b',"run_id":' + _template_text(run_id) + b',"agent_id":' + _template_text(agent_id)
    heads: dict[str, tuple[bytes, bool]] = {}
    dumps = _fields_line
    encode_error = _ORJSON_ERROR
    newline = _NEWLINE
    default = _json_default
    common_keys = _COMMON_KEYS
    time_ns = time.time_ns
    seq = 0
    buf = bytearray()
    buf_lines = 0
    deadline_us = 0
    last_us = 0
    second_us = 0
    next_second_us = 0
    batches = 0
    closed = False
    parked = False

    def make_head(kind: str) -> tuple[bytes, bool]:
        if type(kind) is not str or not kind:
            raise TypeError(f"kind must be a non-empty str, got {kind!r:.40}")
        head = (b'{"v":%d,"kind":' % SCHEMA_VERSION + _template_text(kind) + ids_template
                + b',"seq":%d,"ts":"' + clock.prefix.encode("ascii").replace(b"%", b"%%") + b'%d+00:00"',
                kind in FLUSHING_KINDS)
        if len(heads) < _MAX_CACHED_KINDS:
            heads[kind] = head
        return head

    def write_locked() -> None:
        nonlocal buf, buf_lines, batches
        data = buf
        if not data:
            return
        buf = bytearray()
        buf_lines = 0
        batches += 1
        try:
            write_all(stream, data)  # a raw stream may take part of it
            stream.flush()
        except BaseException as exc:
            core.write_error = exc
            raise

    def append(kind: str, body: bytes | None, flush: bool | None) -> int:
        # One record's line (its fields already encoded as '{...}\n', or None) appended under the
        # lock, with its seq and time; the batch written when it is due. Both emit calls end here.
        nonlocal buf, seq, buf_lines, deadline_us, last_us, second_us, next_second_us, parked
        acquire()  # (a with statement costs twice as much as the two calls)
        try:
            if closed:
                raise RuntimeError("JsonlEmitter is closed")
            now_us = time_ns() // 1000
            if not second_us <= now_us < next_second_us:
                clock.advance(now_us)
                second_us, next_second_us = clock.second_us, clock.next_second_us
                heads.clear()
            head = heads.get(kind)
            if head is None:
                head = make_head(kind)  # raises for a bad kind before a seq is used
            template, kind_flushes = head
            seq += 1
            if not buf:  # a batch opens: it is due delay_us after the previous record
                deadline_us = last_us + delay_us
            buf += template % (seq, now_us - second_us + 1_000_000)  # "SS1uuuuuu+00:00\"": faster than %06d
            at = len(buf)
            buf[at - 14] = _DOT  # "SS.uuuuuu+00:00\""
            if body is None:
                buf += b"}\n"
            else:
                buf += body  # '{"a":1...}\n' -> ',"a":1...}\n' continues the common fields
                buf[at] = _COMMA
            buf_lines += 1
            previous_us = last_us
            last_us = now_us
            if (
                flush or (flush is None and kind_flushes) or buf_lines >= batch_lines
                or not previous_us <= now_us < deadline_us
            ):
                write_locked()
            elif parked:  # lines wait now: the flusher sleeps until they are due
                parked = False
                wake.set()
            return seq
        finally:
            release()

    def emit(kind: str, fields: Mapping[str, Any] | None = None, *, flush: bool | None = None) -> int:
        body: bytes | None = None
        if fields:
            if type(fields) is not dict or not common_keys.isdisjoint(fields):
                fields = _clean_fields(fields)
            if fields:
                try:
                    body = dumps(fields, default, newline)  # '{...}\n'
                except encode_error:  # refused by orjson (or no orjson): the reference encoder
                    body = _fields_line_stdlib(fields)
        return append(kind, body, flush)

    def emit_step(episode_index: int, step_index: int, action: Any, observation: Any, reward: float,
                  terminated: bool, truncated: bool, info: Any, render_payload: Any) -> int:
        # emit("step", step_fields(...)) with the same line, minus what a known layout makes
        # unnecessary: the caller's dict and call, and the check of its keys.
        fields = {"episode_index": episode_index, "step_index": step_index, "action": action,
                  "observation": observation, "reward": reward, "terminated": terminated, "truncated": truncated,
                  "info": info, "render_payload": render_payload}
        try:
            body = dumps(fields, default, newline)  # '{...}\n'
        except encode_error:
            body = _fields_line_stdlib(fields)
        return append("step", body, None)

    def flush() -> None:
        with lock:
            if not closed:
                write_locked()

    def close() -> None:
        nonlocal closed
        with lock:
            if closed:
                return
            try:
                write_locked()
            finally:
                closed = True

    def flusher_look() -> tuple[int, float] | None:
        """``(batches_written, seconds until a batch is due)``; None once closed.

        A waiting batch is due at its deadline. With none waiting, a batch that opens now is due
        ``delay_us`` after the last record: while that is ahead, the flusher naps until then (so
        a busy loop wakes it at most once per ``delay_us``); otherwise it parks (``inf``) and the
        next line that waits sets ``wake``.
        """
        nonlocal parked
        with lock:
            wake.clear()
            if closed:
                return None
            now_us = time_ns() // 1000
            due_us = deadline_us if buf else last_us + delay_us
            parked = not buf and (due_us <= now_us or batch_lines == 1)  # (with 1 line per batch none waits)
            if parked:
                return batches, float("inf")
            return batches, max(0.0, (due_us - now_us) / 1e6)

    def write_if_unchanged(seen_batches: int) -> None:
        with lock:
            if batches == seen_batches and buf and not closed:
                write_locked()

    def flush_at_exit() -> None:
        if not lock.acquire(timeout=1.0):  # pragma: no cover - a thread froze mid-write
            return
        try:
            if not closed and buf:
                write_locked()
        except Exception:  # pragma: no cover - the reader is gone; nothing left to do
            pass
        finally:
            lock.release()

    core = BatchCore(
        emit=emit, emit_step=emit_step, flush=flush, close=close, flusher_look=flusher_look, write_if_unchanged=write_if_unchanged,
        flush_at_exit=flush_at_exit, seq=lambda: seq, pending_lines=lambda: buf_lines,
        batches_written=lambda: batches,
    )
    return core


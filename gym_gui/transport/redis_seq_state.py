"""The worker machine's durable record of the seq_ids a bridge sent, per stream (Qt-free).

A bridge restarted with the same run id numbers each stream on after the larger of the stream's
last id in Redis and the bound kept here, so it never reuses a seq_id a GUI may already hold,
even when Redis lost the stream (a restart without persistence, a deleted key).

One small JSON file per stream key in the state dir (``--state-dir``, by default
``$XDG_STATE_HOME/gym_gui/redis-bridge`` or ``~/.local/state/gym_gui/redis-bridge``), named by
the SHA-256 of the key; it holds ``bound_seq_id``: no seq_id above it was ever handed to Redis.
While a bridge runs the bound is a reservation ahead of what it sent, which only grows: its
headroom is about ``horizon_s`` of the stream's pace since the previous write (at least
``min_headroom``, at most four times that advance, so it settles instead of growing without end).
The first one is written by ``claim`` when the stream's numbering starts (on the thread that
numbers, before any of its events exists); a background thread writes the next one as soon as a
batch has used half of the current one (it also looks every ``interval_s``). Only a batch that
would go beyond the durable bound (a jump faster than the renewal) waits for a synchronous write.
At ``close`` every bound is set to the exact last seq_id sent. So a bridge that exits resumes exactly where it was, and
one that was killed resumes after its reservation (skipping at most the headroom: never reusing).
Each write is atomic: a temporary file, fsync, rename, fsync of the directory. Nothing is written
per entry; the publish path pays one dict update per stream per batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.telemetry.events import MAX_SEQ_ID

__all__ = ["DEFAULT_HORIZON_S", "DEFAULT_INTERVAL_S", "DEFAULT_MIN_HEADROOM", "SeqState", "SeqStateError", "default_state_dir"]

_log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0
#: How many seconds of a stream's pace a reservation covers.
DEFAULT_HORIZON_S = 4.0
#: Smallest reservation ahead of the last seq_id sent: half of it (0.3 s at 50,000 events/s) is the
#: slack the renewal's write has before a batch would wait for the disk; a killed bridge skips at most this.
DEFAULT_MIN_HEADROOM = 32_768
_FORMAT = 1


class SeqStateError(Exception):
    """A state file that exists but cannot be read or understood."""


def default_state_dir() -> Path:
    """``$XDG_STATE_HOME/gym_gui/redis-bridge`` (an absolute XDG_STATE_HOME), else
    ``~/.local/state/gym_gui/redis-bridge``. Any thread; no I/O."""
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "gym_gui" / "redis-bridge"


class SeqState:
    """The durable seq_id bounds of the streams one bridge sends to.

    ``prepare`` (before the first send) and ``close`` (after the last) on the owner thread;
    ``floor`` and ``claim`` on whichever thread numbers streams (the proxy's reader); ``reserve``
    on the publishing thread, before each batch goes out; ``stats`` from any thread.
    """

    def __init__(self, state_dir: str | os.PathLike[str], *, interval_s: float = DEFAULT_INTERVAL_S,
                 min_headroom: int = DEFAULT_MIN_HEADROOM, horizon_s: float = DEFAULT_HORIZON_S) -> None:
        """No I/O. ``interval_s``: how often the renewal thread looks without being woken;
        ``min_headroom``, ``horizon_s``: see the module."""
        if interval_s <= 0 or min_headroom < 1 or horizon_s <= 0:
            raise ValueError("need interval_s > 0, min_headroom >= 1 and horizon_s > 0")
        self.state_dir = Path(state_dir)
        self.interval_s = interval_s
        self.min_headroom = min_headroom
        self.horizon_s = horizon_s
        self._lock = threading.Lock()  # guards the dicts below; held only for dict work
        self._write_lock = threading.Lock()  # serialises file writes (and their bound changes)
        self._sent: dict[str, int] = {}  # key -> highest seq_id handed to Redis
        self._limit: dict[str, int] = {}  # key -> highest seq_id that may be sent now (<= the file's bound)
        self._written: dict[str, int] = {}  # key -> _sent when its file was last written
        self._written_at: dict[str, float] = {}  # key -> when (time.monotonic)
        self._renew_at: dict[str, int] = {}  # key -> a send beyond this wakes the renewal thread
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._retry_at = 0.0  # after a failed write, the renewal thread waits until then
        self._thread: threading.Thread | None = None
        self._rlog = RateLimitedLog(_log, interval_s=2.0)
        self.writes = 0
        self.sync_writes = 0  # writes the publishing thread waited for
        self.errors = 0
        self.last_error: str | None = None

    # -- owner thread ----------------------------------------------------------------------------
    def prepare(self) -> str | None:
        """Create the state dir, prove it writable and start the renewal thread; None when usable,
        else why not. Owner thread; blocks on the file system."""
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            probe = self.state_dir / f".probe-{os.getpid()}"
            _write_atomically(probe, b"{}\n", self.state_dir)
            probe.unlink()
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        if self._thread is None:
            self._thread = threading.Thread(target=self._renew_loop, name="seq-state", daemon=True)
            self._thread.start()
        return None

    def close(self) -> bool:
        """Stop renewing and write every stream's exact last seq_id sent; True if all were written.
        Owner thread, after the last ``reserve``; blocks on the file system."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30.0)
        with self._lock:
            keys = list(self._sent)
        return self._write(keys, exact=True)

    # -- numbering thread ------------------------------------------------------------------------
    def floor(self, key: str) -> int | None:
        """The bound kept for stream ``key`` (no seq_id above it was sent), None without a file.

        Any thread; reads one small file. Raises ``SeqStateError`` for a file that cannot be read
        or holds no valid bound.
        """
        path = self.path_of(key)
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SeqStateError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
        bound = data.get("bound_seq_id") if isinstance(data, dict) else None
        if type(bound) is not int or not 0 <= bound <= MAX_SEQ_ID:
            raise SeqStateError(f"{path} holds no valid bound_seq_id: {str(data)[:200]!r}")
        if data.get("stream_key") != key:
            raise SeqStateError(f"{path} belongs to stream {str(data.get('stream_key'))[:200]!r}, not {key[:200]!r}")
        return bound

    def claim(self, key: str, floor: int | None) -> None:
        """The stream ``key`` will be numbered after ``floor``: write its first reservation now, so its
        first batches go out without waiting. The numbering thread, once per stream; blocks on one
        write (a failure is logged and counted; the renewal thread tries again)."""
        with self._lock:
            if key in self._limit:
                return
            self._sent[key] = max(self._sent.get(key, 0), floor or 0)
        self._write([key], exact=False)

    def path_of(self, key: str) -> Path:
        """The state file of stream ``key``. Any thread; no I/O."""
        return self.state_dir / (hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:40] + ".json")

    # -- publishing thread -----------------------------------------------------------------------
    def reserve(self, maxima: Mapping[str, int]) -> None:
        """Record that a batch with these highest seq_ids per stream key is about to be sent; returns
        once each is within a durable bound (a synchronous write, only when one is beyond it).

        Publishing thread, before the batch goes out; usually only dict work, never raises (a failed
        write is logged and counted, and the batch goes out anyway).
        """
        over: list[str] | None = None
        renew = False
        with self._lock:
            sent, limit, renew_at = self._sent, self._limit, self._renew_at
            for key, seq in maxima.items():
                if seq > sent.get(key, -1):
                    sent[key] = seq
                if seq > limit.get(key, -1):
                    (over := over or []).append(key)
                elif seq > renew_at.get(key, -1):
                    renew = True
        if renew:
            self._wake.set()  # half of a reservation used: renewed in the background, before it runs out
        if over:
            self._write(over, exact=False, sync=True)

    # -- any thread ------------------------------------------------------------------------------
    def count_error(self, detail: str) -> None:
        """Count a state problem found by a caller (e.g. a file ``floor`` could not read). Any thread."""
        with self._lock:
            self.errors += 1
            self.last_error = detail

    def stats(self) -> dict[str, object]:
        """``streams``, ``writes``, ``sync_writes``, ``errors``, ``last_error``. Any thread; never blocks."""
        return {"streams": len(self._sent), "writes": self.writes, "sync_writes": self.sync_writes,
                "errors": self.errors, "last_error": self.last_error}

    # -- internals -------------------------------------------------------------------------------
    def _renew_loop(self) -> None:
        """Renewal thread: when woken (or every ``interval_s``), renew the reservations half used."""
        while True:
            self._wake.wait(self.interval_s)
            if self._stop.is_set():
                return
            self._wake.clear()
            if time.monotonic() < self._retry_at:
                continue
            with self._lock:
                due = [key for key, seq in self._sent.items()
                       if seq > self._renew_at.get(key, -1) or key not in self._written]
            if due:
                self._write(due, exact=False)

    def _write(self, keys: list[str], *, exact: bool, sync: bool = False) -> bool:
        """Write the files of ``keys``; the bounds in force follow the files (lowered before a write,
        raised after it), so nothing is ever sent beyond what a file on disk allows."""
        ok = True
        with self._write_lock:
            now = time.monotonic()
            with self._lock:
                if sync:  # a renewal may have just moved the bounds far enough
                    keys = [key for key in keys if self._sent.get(key, 0) > self._limit.get(key, -1)]
                plan: list[tuple[str, int, int]] = []
                for key in keys:
                    sent = self._sent.get(key, 0)
                    limit = self._limit.get(key, -1)
                    if exact:
                        bound = sent
                        if bound < limit:
                            self._limit[key] = bound  # lowered now: the file on disk still allows more
                    else:
                        bound = min(MAX_SEQ_ID, max(limit, sent + self._headroom(key, sent, now)))
                    plan.append((key, sent, bound))
            for key, sent, bound in plan:
                try:
                    self._write_file(key, sent, bound, closed=exact)
                except OSError as exc:
                    ok = False
                    self.count_error(f"{type(exc).__name__}: {exc}")
                    self._rlog.log(logging.ERROR, "write", "cannot save the seq_id bound of %s in %s (%s): a bridge "
                                   "restarted after Redis lost this stream may reuse its seq_ids",
                                   key[:200], self.state_dir, self.last_error)
                    with self._lock:  # sent anyway (counted, logged); the renewal thread tries again later
                        self._limit[key] = max(bound, self._limit.get(key, -1))
                    self._retry_at = time.monotonic() + self.interval_s
                    continue
                with self._lock:
                    self._limit[key] = bound
                    self._written[key] = sent
                    self._written_at[key] = now
                    self._renew_at[key] = sent + (bound - sent) // 2
                self.writes += 1
                self.sync_writes += sync
        return ok

    def _headroom(self, key: str, sent: int, now: float) -> int:
        """About ``horizon_s`` of the pace since the last write, within [min_headroom, 4 x that advance].
        Caller holds ``_lock``."""
        advance = sent - self._written.get(key, sent)
        elapsed_s = now - self._written_at.get(key, now)
        paced = int(advance * self.horizon_s / elapsed_s) if elapsed_s > 0 else 4 * advance
        return max(self.min_headroom, min(4 * advance, paced))

    def _write_file(self, key: str, sent: int, bound: int, *, closed: bool) -> None:
        record = {"format": _FORMAT, "stream_key": key, "bound_seq_id": bound, "last_sent_seq_id": sent,
                  "closed": closed, "pid": os.getpid(), "updated_at": datetime.now(timezone.utc).isoformat()}
        data = json.dumps(record, ensure_ascii=True).encode("ascii") + b"\n"
        _write_atomically(self.path_of(key), data, self.state_dir)


def _write_atomically(path: Path, data: bytes, folder: Path) -> None:
    """Write ``data`` to ``path`` all or nothing: a temporary file, fsync, rename, fsync of ``folder``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)

"""The reader thread's life of a TelemetryProxy: its read loops, the back-pressure wait, the end of the
source and the supervision of the worker (Qt-free).

A mixin of ``proxy.TelemetryProxy`` (kept apart so each module holds one concept): the proxy
holds the state and the decoding and publishing (``_apply``, ``_publish``); this holds what runs
around them on the reader thread, and ``stop``. See docs/ingest.md ("Supervision", "Back-pressure").
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING, Any, Callable, Protocol, Sequence

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.ingest.chunk_decoder import ChunkDecoder, DecodedChunk
from gym_gui.ingest.frames import TOPICS, read_frame
from gym_gui.ingest.line_reader import LineReader
from gym_gui.ingest.records import RejectReason
from gym_gui.ingest.run_completion import describe_exit, synthetic_completion
from gym_gui.ingest.shown_ids import shown_id
from gym_gui.ingest.stderr_tail import StderrTail
from gym_gui.ingest.worker_pipe import ExitBoundedPipe
from gym_gui.telemetry.events import TelemetryEvent, Topic, utc_now_iso

__all__ = ["IngestGate", "ProxyLifecycle"]

_log = logging.getLogger("gym_gui.ingest.proxy")

#: How long the reader sleeps on a closed gate before re-checking its stop flag.
_GATE_RECHECK_S = 0.25


class IngestGate(Protocol):
    """What the proxy needs from the durable path's back-pressure gate (``DbSink.ingest_gate``)."""

    def wait_until_open(self, timeout_s: float | None = None) -> bool: ...


class ProxyLifecycle:
    """Reader-thread loops, gate wait, end of source, worker supervision and ``stop`` of a proxy."""

    # The proxy's state these methods use (set by TelemetryProxy.__init__).
    name: str
    _gate: IngestGate | None
    _max_line_bytes: int
    _read_chunk_bytes: int
    _decoder: ChunkDecoder
    _stderr_tail: StderrTail
    _exit_drain_s: float
    _feed_lock: threading.Lock
    _paused_s: float
    _reader_failed: bool
    _pipes: list[ExitBoundedPipe]
    _proc: subprocess.Popen[bytes] | None
    _ingest_proc: subprocess.Popen[bytes] | None
    _reader: threading.Thread | None
    _stderr_reader: threading.Thread | None
    _stop_requested: threading.Event
    _stop_lock: threading.Lock
    _finished: threading.Event
    _on_finished: Callable[[], None] | None
    _exit_code: int | None
    _held_failures: dict[str, tuple[Any, ...]]
    _runs_seen: dict[str, str]
    _runs_completed: set[str]
    _refused: dict[tuple[str, str], str]
    _default_run_id: str | None
    _default_agent_id: str
    _rlog: RateLimitedLog

    if TYPE_CHECKING:
        def _apply(self, decoded: DecodedChunk, topics: Sequence[Topic] | None = None) -> None: ...

        def _publish(self, topic: Topic, run_id: str, agent_id: str, seq: int | None, ts_iso: str,
                     payload: Any, *, hold_failure: bool = True) -> TelemetryEvent | None: ...

        def _reject(self, reason: str, line_no: int | None, detail: str) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the worker to end (SIGTERM), kill it after ``timeout_s``, and join the threads.

        Idempotent; any thread but the reader's; blocks up to about ``2 * timeout_s``. Returns True
        when every thread has ended. For an attached stream the caller must close its writer end.
        """
        with self._stop_lock:  # one SIGTERM, however many callers stop concurrently (a second one
            first_stop = not self._stop_requested.is_set()  # could end a worker that is finishing up)
            self._stop_requested.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            if first_stop:
                try:
                    proc.terminate()
                except OSError:
                    pass
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _log.warning("worker %s ignored SIGTERM for %.1f s; killing it", self.name, timeout_s)
                proc.kill()
        for thread in (self._reader, self._stderr_reader):
            if thread is not None:
                thread.join(timeout_s)
        return not any(t is not None and t.is_alive() for t in (self._reader, self._stderr_reader))

    def _read_loop(self, stream: IO[bytes]) -> None:
        """Reader thread of an attached stream (or a worker without ingest process): decode here."""
        try:
            reader = LineReader(stream, max_line_bytes=self._max_line_bytes, read_chunk_bytes=self._read_chunk_bytes)
            self._wait_for_gate()
            decode = self._decoder.decode
            for chunk in reader:
                self._apply(decode(chunk, utc_now_iso()))
                self._wait_for_gate()
        except Exception:
            self._reader_failed = True
            _log.exception("%s reader failed; ending the source", self.name)
        finally:
            self._finish()

    def _read_frames_loop(self, pipe: IO[bytes]) -> None:
        """Reader thread of a spawned worker: publish what the ingest child decoded."""
        try:
            self._wait_for_gate()
            while True:
                decoded = read_frame(pipe)
                if decoded is None:
                    break
                self._apply(decoded, TOPICS)
                self._wait_for_gate()
        except Exception:
            self._reader_failed = True
            _log.exception("%s ingest stream failed; ending the source", self.name)
        finally:
            pipe.close()  # a child still writing gets EPIPE, stops the worker and exits
            self._finish()
    def _wait_for_gate(self) -> None:
        gate = self._gate
        if gate is None:
            return
        started = time.monotonic()
        while not gate.wait_until_open(_GATE_RECHECK_S):
            if self._stop_requested.is_set():
                break
        waited = time.monotonic() - started
        if waited > 0.001:
            with self._feed_lock:
                self._paused_s += waited

    def _finish(self) -> None:
        """Reader thread: reap the worker and make sure every run it reported is completed. Never raises."""
        try:
            exit_code, ingest_failure = self._reap()
            self._exit_code = exit_code
            with self._feed_lock:
                for topic, run_id, agent_id, seq, ts_iso, payload in list(self._held_failures.values()):
                    payload = dict(payload)
                    payload["stderr_tail"] = self._stderr_tail.text()
                    self._publish_safely(topic, run_id, agent_id, seq, ts_iso, payload)
                self._held_failures.clear()
                runs = dict(self._runs_seen)
                if not runs and self._default_run_id is not None:
                    runs[self._default_run_id] = self._default_agent_id
                refused_runs = {run for run, _agent in self._refused}  # another process's runs: not ours to end
                for run_id, agent_id in runs.items():
                    if run_id not in self._runs_completed and run_id not in refused_runs:
                        payload = synthetic_completion(run_id, exit_code, ingest_failure,
                                                       stopped=self._stop_requested.is_set(),
                                                       stderr_tail=self._stderr_tail.text(), name=self.name,
                                                       reader_failed=self._reader_failed)
                        self._publish_safely(Topic.RUN_COMPLETED, run_id, agent_id, None, utc_now_iso(), payload)
            if exit_code not in (None, 0):
                _log.warning("%s exited with %s", self.name, describe_exit(exit_code))
            self._rlog.flush(logging.WARNING, f"{self.name} warnings")  # the end of a burst of rejections
        except Exception:  # pragma: no cover - a bug; the run must still end
            _log.exception("%s could not complete its runs", self.name)
        finally:
            self._finished.set()
            if self._on_finished is not None:
                try:
                    self._on_finished()
                except Exception:
                    _log.exception("%s: the on_finished callback failed", self.name)

    def _publish_safely(self, *fields: Any) -> None:
        """``_publish`` of a proxy-made event; a failure is a counted rejection. Caller holds ``_feed_lock``."""
        try:
            self._publish(*fields, hold_failure=False)
        except Exception as exc:
            self._reject(RejectReason.INTERNAL_ERROR, None, f"{type(exc).__name__}: {shown_id(str(exc), 200)}")

    def _reap(self) -> tuple[int | None, str | None]:
        """Wait for the ingest child and the worker; (worker exit code, how the ingest child failed or None)."""
        proc = self._proc
        if proc is None:
            return None, None
        ingest_failure: str | None = None
        if self._ingest_proc is not None and self._ingest_proc.wait() != 0:
            ingest_failure = describe_exit(self._ingest_proc.returncode)
            _log.error("%s: the ingest process ended with %s; stopping the worker", self.name, ingest_failure)
        if (ingest_failure is not None or self._reader_failed) and proc.poll() is None:
            proc.kill()  # nobody reads its output any more
        exit_code = proc.wait()
        if self._stderr_reader is not None:
            self._stderr_reader.join(self._exit_drain_s + 1.0)
        if self._stderr_reader is None or not self._stderr_reader.is_alive():
            for pipe in (*self._pipes, proc.stdout, proc.stderr):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:
                        pass
        return exit_code, ingest_failure

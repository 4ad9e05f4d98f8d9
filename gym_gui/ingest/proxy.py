"""TelemetryProxy: worker JSONL to TelemetryEvents on the RunBus, with worker supervision (Qt-free).

One proxy serves one source: a worker subprocess it spawns, a binary stream it is given, or lines
fed one by one. It assigns each stream's seq_id, counts and reports bad lines, pauses reading
while the durable path is behind (back-pressure), and makes sure every run it saw ends with a
RUN_COMPLETED event, synthesising a failed one when the worker dies without saying so.

This module holds the proxy's state, its sources and the decoding and publishing of records;
the reader thread's loops, the back-pressure wait, the end of the source and the supervision of
the worker are its base ``proxy_lifecycle.ProxyLifecycle``.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import Counter
from typing import IO, Any, BinaryIO, Callable, Mapping, Sequence

from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.ingest.chunk_decoder import ChunkDecoder, DecodedChunk
from gym_gui.ingest.line_reader import DEFAULT_READ_CHUNK_BYTES
from gym_gui.ingest.records import RecordRejected, RejectReason, normalize_line
from gym_gui.ingest.run_completion import wants_stderr_tail
from gym_gui.ingest.seq_ids import exhausted_detail, next_seq_id, seq_floor_of
from gym_gui.ingest.shown_ids import shown_id
from gym_gui.ingest.stderr_tail import StderrTail
from gym_gui.ingest.worker_pipe import DEFAULT_EXIT_DRAIN_S, ExitBoundedPipe
from gym_gui.ingest.proxy_lifecycle import IngestGate, ProxyLifecycle
from gym_gui.ingest.worker_process import buffered, start_ingest_child, start_worker
from gym_gui.telemetry.events import MAX_SEQ_ID, TelemetryEvent, Topic, checked_event, utc_now_iso
from gym_gui.telemetry.run_bus import RunBus, get_bus
from gym_gui.telemetry.step_payload import StepPayload
from gym_gui.telemetry.stream_owners import STREAM_OWNED, StreamOwned

__all__ = ["DEFAULT_AGENT_ID", "DEFAULT_MAX_LINE_BYTES", "DEFAULT_MAX_STREAMS", "IngestGate", "TelemetryProxy"]

_log = logging.getLogger(__name__)

DEFAULT_AGENT_ID = "agent-0"
#: Longest accepted line; well above a downscaled video frame encoded in JSON.
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
#: Most streams ``(run_id, agent_id)`` one proxy numbers; records of further streams are rejected.
DEFAULT_MAX_STREAMS = 10_000
_STEP = Topic.STEP_APPENDED


class TelemetryProxy(ProxyLifecycle):
    """Reads worker JSONL, publishes TelemetryEvents, supervises the worker.

    Threads: ``spawn``/``attach`` start a reader thread (and a stderr thread for a subprocess)
    that does all parsing and publishing; every other method may be called from any thread and
    returns promptly unless documented as blocking.
    """

    def __init__(
        self,
        bus: RunBus | None = None,
        *,
        default_agent_id: str = DEFAULT_AGENT_ID,
        run_id: str | None = None,
        seq_floor: Callable[[str, str], int | None] | None = None,
        gate: IngestGate | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        read_chunk_bytes: int = DEFAULT_READ_CHUNK_BYTES,
        stderr_tail_bytes: int = 8192,
        decode_in_subprocess: bool = True,
        max_streams: int = DEFAULT_MAX_STREAMS,
        exit_drain_s: float = DEFAULT_EXIT_DRAIN_S,
        name: str = "worker",
        on_finished: Callable[[], None] | None = None,
    ) -> None:
        """``run_id`` is used for records without one (and for a synthesised RUN_COMPLETED when
        the worker dies before saying anything); ``seq_floor(run_id, agent_id)`` returns the
        highest seq_id already stored for a stream (e.g. ``store.max_seq_id``, or
        ``store.claim_stream``, which also makes this process the stream's writer and raises
        StreamOwned when another live process writes it: every record of that stream is then a
        ``stream_owned`` rejection) so numbering continues after a restart; ``gate`` pauses reading while the durable backlog is high;
        ``decode_in_subprocess`` lets ``spawn`` decode the worker's lines in an ingest child
        process (another core) instead of on the reader thread; ``max_streams`` bounds the
        per-stream tables (a record of a further stream is a ``too_many_streams`` rejection);
        ``exit_drain_s`` is how long a spawned worker's output is still read after it exited while
        a grandchild keeps its pipes open; ``on_finished()`` is called on the reader thread right
        after ``finished`` turns True (e.g. to wake a consumer that waits for data): it must not block.
        """
        if not default_agent_id:
            raise ValueError("default_agent_id must be a non-empty string")
        self._bus = bus if bus is not None else get_bus()
        self._default_agent_id = default_agent_id
        self._default_run_id = run_id
        self._seq_floor = seq_floor
        self._gate = gate
        self._max_line_bytes = max_line_bytes
        self._read_chunk_bytes = read_chunk_bytes
        self._stderr_tail = StderrTail(stderr_tail_bytes)
        self._decode_in_subprocess = decode_in_subprocess
        self._max_streams = max_streams
        self._exit_drain_s = exit_drain_s
        self._decoder = ChunkDecoder(default_agent_id=default_agent_id, default_run_id=run_id,
                                     max_line_bytes=max_line_bytes)
        self.name = name
        self._rlog = RateLimitedLog(_log, interval_s=1.0)

        self._feed_lock = threading.Lock()  # serialises seq assignment and publishing per source
        self._last_seq: dict[tuple[str, str], int] = {}
        self._refused: dict[tuple[str, str], str] = {}  # stream -> why: another live process writes it
        self._runs_seen: dict[str, str] = {}  # run_id -> agent_id of its first event
        self._runs_completed: set[str] = set()
        self._held_failures: dict[str, tuple[Any, ...]] = {}  # run_id -> a worker's own `failed` completion
        self._reader_failed = False
        self._pipes: list[ExitBoundedPipe] = []  # a spawned worker's stdout/stderr readers (they hold pidfds)
        self._lines_read = 0
        self._blank_lines = 0
        self._published: dict[Topic, int] = {}
        self._rejected: Counter[str] = Counter()
        self._seq_reassigned = 0
        self._worker_errors = 0
        self._last_rejected = ""  # the latest rejection, for the debug pane: "<utc time> line N (reason): detail"
        self._paused_s = 0.0

        self._source_claimed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._ingest_proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stderr_reader: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._stop_lock = threading.Lock()
        self._finished = threading.Event()
        self._on_finished = on_finished
        self._exit_code: int | None = None

    # -- sources ---------------------------------------------------------------------------------
    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> subprocess.Popen[bytes]:
        """Start the worker ``argv`` and read its stdout on a new thread. Any thread; does not block.

        Raises RuntimeError if this proxy already has a source, OSError if the program cannot start.
        """
        self._claim_source()
        try:
            proc = start_worker(argv, env=env, cwd=cwd)
        except BaseException:
            self._source_claimed = False
            raise
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        self._pipes.append(ExitBoundedPipe(proc.stderr.fileno(), proc.pid, drain_s=self._exit_drain_s))
        stderr = buffered(self._pipes[-1])
        self._stderr_reader = threading.Thread(
            target=self._stderr_tail.consume, args=(stderr, self.name), name=f"{self.name}-stderr", daemon=True
        )
        self._stderr_reader.start()
        if not self._decode_in_subprocess:
            self._pipes.append(ExitBoundedPipe(proc.stdout.fileno(), proc.pid, drain_s=self._exit_drain_s))
            self._start_reader(self._pipes[-1])
            return proc
        self._ingest_proc = start_ingest_child(
            proc, default_agent_id=self._default_agent_id, default_run_id=self._default_run_id,
            max_line_bytes=self._max_line_bytes, read_chunk_bytes=self._read_chunk_bytes,
            exit_drain_s=self._exit_drain_s)
        assert self._ingest_proc.stdout is not None
        self._reader = threading.Thread(target=self._read_frames_loop, args=(self._ingest_proc.stdout,),
                                        name=f"{self.name}-reader", daemon=True)
        self._reader.start()
        return proc

    def attach(self, stream: BinaryIO) -> None:
        """Read an already open binary line stream on a new thread until EOF. Any thread; does not block."""
        self._claim_source()
        self._start_reader(stream)

    def _claim_source(self) -> None:
        with self._feed_lock:
            if self._source_claimed:
                raise RuntimeError(f"proxy {self.name} already reads a source")
            self._source_claimed = True

    def _start_reader(self, stream: IO[bytes]) -> None:
        self._reader = threading.Thread(target=self._read_loop, args=(stream,), name=f"{self.name}-reader", daemon=True)
        self._reader.start()

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """True once the source ended and every event (including RUN_COMPLETED) is published."""
        return self._finished.is_set()

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The spawned worker, if any."""
        return self._proc

    @property
    def exit_code(self) -> int | None:
        """The worker's exit code once it ended (negative: killed by that signal)."""
        return self._exit_code

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the source ended and everything is published; True if it has. Any thread but
        the reader's; blocks (never call it on the GUI thread without a zero timeout)."""
        return self._finished.wait(timeout_s)

    # -- stats -----------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """A snapshot of the counters (for the debug pane and progress lines). Any thread."""
        with self._feed_lock:
            return {
                "lines_read": self._lines_read,
                "blank_lines": self._blank_lines,
                "events_published": self._published_by_name(),
                "rejected": dict(self._rejected),
                "rejected_total": sum(self._rejected.values()),
                "seq_reassigned": self._seq_reassigned,
                "worker_errors": self._worker_errors,
                "last_rejected": self._last_rejected,
                "paused_s": self._paused_s,
                "exit_code": self._exit_code,
                "finished": self._finished.is_set(),
            }

    def _published_by_name(self) -> dict[str, int]:
        """Events published per topic name. Caller holds ``_feed_lock``."""
        return {topic.name: n for topic, n in self._published.items()}

    def run_ids(self) -> list[str]:
        """Runs this proxy has published events for (or will complete), in first-seen order. Any thread."""
        with self._feed_lock:
            runs = list(self._runs_seen)
        if self._default_run_id is not None and self._default_run_id not in runs:
            runs.append(self._default_run_id)
        return runs

    def refused_streams(self) -> dict[tuple[str, str], str]:
        """Streams ``(run_id, agent_id)`` whose records are refused because another live process
        writes them (``seq_floor`` raised StreamOwned), with the reason. Any thread."""
        with self._feed_lock:
            return dict(self._refused)

    def rejected_counts(self) -> dict[str, int]:
        """Rejected lines by reason (RejectReason keys). Any thread."""
        with self._feed_lock:
            return dict(self._rejected)

    # -- ingest ----------------------------------------------------------------------------------
    def feed_line(self, line: bytes | str, *, line_no: int | None = None) -> TelemetryEvent | None:
        """Normalise and publish one line (without or with its newline); returns the event or None
        if the line was rejected or blank. Any thread (calls are serialised); never blocks long.
        """
        with self._feed_lock:
            self._lines_read += 1
            return self._ingest(line, self._lines_read if line_no is None else line_no, utc_now_iso())

    def _ingest(self, line: bytes | str, line_no: int, now_iso: str) -> TelemetryEvent | None:
        """Caller holds ``_feed_lock``."""
        if not line or line.isspace():
            self._blank_lines += 1
            return None
        try:
            fields = normalize_line(
                line, default_agent_id=self._default_agent_id, default_run_id=self._default_run_id, now_iso=now_iso
            )
        except RecordRejected as exc:
            self._reject(exc.reason, line_no, exc.detail)
            return None
        try:
            return self._publish(*fields)
        except Exception as exc:  # a bug here must cost this line only
            self._reject(RejectReason.INTERNAL_ERROR, line_no, f"{type(exc).__name__}: {shown_id(str(exc), 200)}")
            return None

    def _reject(self, reason: str, line_no: int | None, detail: str) -> None:
        """Count and report one record that cannot become an event. Caller holds ``_feed_lock``."""
        self._rejected[reason] += 1
        where = "a record" if line_no is None else f"line {line_no}"
        self._last_rejected = f"{utc_now_iso()} {where} ({reason}): {shown_id(detail, 200)}"
        self._rlog.log(logging.WARNING, reason, "%s %s rejected (%s): %s", self.name, where, reason, detail)

    def _publish(self, topic: Topic, run_id: str, agent_id: str, seq: int | None, ts_iso: str,
                 payload: Any, *, hold_failure: bool = True) -> TelemetryEvent | None:
        """Assign the stream's seq_id and publish; None if the record was rejected or held back.

        Caller holds ``_feed_lock``. Never constructs an out-of-range event (``seq_ids``): a record
        of an exhausted stream, or of one stream too many, is a counted rejection instead.
        """
        key = (run_id, agent_id)
        last = self._last_seq.get(key)
        if last is None:
            refused = self._refused.get(key)
            if refused is not None:
                self._reject(STREAM_OWNED, None, refused)
                return None
            if len(self._last_seq) + len(self._refused) >= self._max_streams:
                self._reject(RejectReason.TOO_MANY_STREAMS, None,
                             f"stream {shown_id(run_id)}/{shown_id(agent_id)} would be stream "
                             f"{len(self._last_seq) + 1}; this proxy numbers at most {self._max_streams}")
                return None
            try:
                last = self._floor(key)
            except StreamOwned as exc:  # seq_floor claims the stream: a second writer is refused, never merged
                self._refused[key] = str(exc)
                self._reject(STREAM_OWNED, None, str(exc))
                return None
        if topic is Topic.RUN_COMPLETED:
            self._runs_completed.add(run_id)  # the worker said it ended: no synthetic completion
            if hold_failure and self._proc is not None and wants_stderr_tail(payload):
                self._held_failures.setdefault(run_id, (topic, run_id, agent_id, seq, ts_iso, payload))
                return None  # published at the worker's exit, with its stderr tail
        new_seq = next_seq_id(last, seq)
        if new_seq is None:
            self._last_seq[key] = last
            self._reject(RejectReason.SEQ_EXHAUSTED, None,
                         f"{topic.name} of {exhausted_detail(shown_id(run_id) + '/' + shown_id(agent_id))}")
            return None
        if seq is not None and new_seq != seq:
            self._seq_reassigned += 1
            self._rlog.log(
                logging.WARNING, "seq", "%s stream %s/%s sent seq %s after %d; using %d",
                self.name, shown_id(run_id), shown_id(agent_id), shown_id(seq, 24), last, new_seq,
            )
        self._last_seq[key] = new_seq
        evt = TelemetryEvent(topic, run_id, agent_id, new_seq, ts_iso, payload)
        if run_id not in self._runs_seen:
            self._runs_seen[run_id] = agent_id
        if topic is Topic.RUN_HEARTBEAT and payload.get("event") == "error":
            self._worker_errors += 1
            self._rlog.log(logging.WARNING, "worker-error", "%s reported an error: %s", self.name,
                           shown_id(repr(dict(payload)), 300))
        self._bus.publish(evt)
        self._published[topic] = self._published.get(topic, 0) + 1  # Topic hashes by identity: cheap
        return evt

    def _floor(self, key: tuple[str, str]) -> int:
        if self._seq_floor is None:
            return 0
        try:
            return seq_floor_of(self._seq_floor(*key))
        except StreamOwned:
            raise
        except Exception as exc:
            _log.error("%s could not read the stored seq_id of %s/%s (%s: %s); starting at 1", self.name,
                       shown_id(key[0]), shown_id(key[1]), type(exc).__name__, shown_id(str(exc), 200))
            _log.debug("seq_floor failure", exc_info=True)
            return 0

    def _apply(self, decoded: DecodedChunk, topics: Sequence[Topic] | None = None) -> None:
        """Count, reject and publish one decoded read, in line order.

        ``topics``: the items carry topic indexes into it (a frame from the ingest child), not Topics.
        Hot path: a step of a known stream whose worker seq follows the stream's (or that has none,
        then it gets the next) is made right here, and consecutive ones of a stream are published
        together (``RunBus.publish_run``, before anything else is published); every other item goes
        through ``_publish``, which does the same plus the rare cases.
        """
        lines, blanks, items = decoded
        with self._feed_lock:
            self._lines_read += lines
            self._blank_lines += blanks
            publish, reject = self._publish, self._reject
            last_seq, runs_seen = self._last_seq, self._runs_seen
            publish_run = getattr(self._bus, "publish_run", None)
            run: list[TelemetryEvent] = []  # consecutive fast-path steps of one stream, not yet published
            run_key: tuple[str, str] | None = None
            steps = 0
            for item in items:
                try:
                    if len(item) != 6:
                        reject(*item)
                        continue
                    topic, run_id, agent_id, seq, ts_iso, payload = item
                    if topics is not None:  # a frame item (frames.write_chunk): topic index, StepPayload fields
                        topic = topics[topic]
                        if type(payload) is tuple:
                            payload = StepPayload(payload)
                    if topic is _STEP and run_id in runs_seen:
                        key = (run_id, agent_id)
                        last = last_seq.get(key)
                        if last is not None:
                            if seq is None and last < MAX_SEQ_ID:  # no worker seq (gym_gui envelopes): the next
                                seq = last + 1
                            if type(seq) is int and last < seq <= MAX_SEQ_ID:
                                # what the constructor would check (or normalise: then it makes it)
                                if (type(ts_iso) is str and ts_iso and type(run_id) is str
                                        and (agent_id is None or type(agent_id) is str and agent_id)
                                        and (type(payload) is StepPayload or type(payload) is dict)):
                                    evt = checked_event(topic, run_id, agent_id, seq, ts_iso, payload)
                                else:
                                    evt = TelemetryEvent(topic, run_id, agent_id, seq, ts_iso, payload)
                                if key != run_key:
                                    if run:
                                        steps += self._publish_run(publish_run, run)
                                        run = []
                                    run_key = key
                                run.append(evt)
                                last_seq[key] = seq
                                continue
                    if run:
                        steps += self._publish_run(publish_run, run)
                        run = []
                    publish(topic, run_id, agent_id, seq, ts_iso, payload)
                except Exception as exc:  # a bug here must cost this record only, never the source
                    reject(RejectReason.INTERNAL_ERROR, None, f"{type(exc).__name__}: {shown_id(str(exc), 200)}")
            if run:
                steps += self._publish_run(publish_run, run)
            if steps:
                self._published[_STEP] = self._published.get(_STEP, 0) + steps

    def _publish_run(self, publish_run: Callable[[list[TelemetryEvent]], None] | None,
                     run: list[TelemetryEvent]) -> int:
        """Publish ``run`` (one stream's consecutive steps); how many were published. Caller holds
        ``_feed_lock``. A failure costs the events not published, each a counted rejection."""
        try:
            if publish_run is not None:
                publish_run(run)
                return len(run)
        except Exception as exc:
            for _evt in run:
                self._reject(RejectReason.INTERNAL_ERROR, None, f"{type(exc).__name__}: {shown_id(str(exc), 200)}")
            return 0
        published = 0
        for evt in run:  # a bus without publish_run
            try:
                self._bus.publish(evt)
                published += 1
            except Exception as exc:
                self._reject(RejectReason.INTERNAL_ERROR, None, f"{type(exc).__name__}: {shown_id(str(exc), 200)}")
        return published

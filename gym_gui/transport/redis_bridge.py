"""The worker machine's side of the Redis transport: a worker's JSONL into Redis Streams (Qt-free).

    python -m gym_gui.transport.redis_bridge --redis-url redis://gui-host:6379/0 \\
        [--run-id ID] [--default-agent-id ID] -- python -m gym_gui.workers.q_learning --episodes 300

The ingest is the local one: a ``TelemetryProxy`` spawns the worker and publishes its events on a
private RunBus; a ``RedisPump`` drains that bus losslessly into one stream per run and agent.
Numbering continues after the larger of the stream's last id in Redis and the bound this machine
keeps for it (``SeqState`` in ``--state-dir``), so a restarted bridge never reuses an id, even
when Redis lost the stream meanwhile. When Redis is unreachable the pump keeps the events and retries with backoff; its gate stops
the proxy reading (the worker then blocks on its own output) until Redis takes them again.

Start: a first ``PING`` through the standard library (``redis_preflight``); once Redis answers, the
worker starts and redis-py is imported meanwhile (the proxy holds the worker's events at its gate
until the pump exists). When the preflight gets no answer, or the URL is one it leaves to redis-py,
redis-py's client pings until ``--connect-timeout-s`` before the worker starts, as it always did.

Exit code: 0 completed, 3 completed but lines of the worker were rejected (or events could not be
encoded), 1 failed (or not every event reached Redis, or the worker's telemetry could not be read
to its end), 130 cancelled (SIGINT, SIGTERM or SIGHUP stops the worker; its cancellation is sent
too; a second signal stops waiting for Redis), 2 when the worker cannot be started, Redis cannot
be reached at start or the state dir is not writable.

Shutdown is bounded: if the proxy's reader thread dies (or hangs) before it has published the
end of the run, the bridge notices (the thread ended without finishing, or it is still busy
``flush_timeout_s`` after the worker was stopped), says so, sends what it has and exits 1.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence, TextIO

from gym_gui.command_exit import command_exit
from gym_gui.gc_tuning import tune_gc
from gym_gui.rate_limited_log import RateLimitedLog
from gym_gui.signal_relay import SignalRelay
from gym_gui.telemetry.backpressure import DeferredGate
from gym_gui.ingest.proxy import DEFAULT_AGENT_ID, TelemetryProxy
from gym_gui.telemetry.run_bus import RunBus
from gym_gui.transport.redis_keys import DEFAULT_RETENTION, KEY_PREFIX
from gym_gui.transport.redis_preflight import ping_once
from gym_gui.transport.redis_seq_state import SeqState, SeqStateError, default_state_dir

if TYPE_CHECKING:  # redis-py and what needs it are imported once the worker runs (see ``main``)
    import redis

    from gym_gui.transport.redis_publisher import RedisPublisher
    from gym_gui.transport.redis_pump import RedisPump

__all__ = ["BRIDGE_CLIENT_NAME", "EXIT_CODES", "RedisBridge", "build_parser", "main"]

_log = logging.getLogger(__name__)

#: CLIENT SETNAME of the bridge's connections.
BRIDGE_CLIENT_NAME = "gym_gui-redis-bridge"
EXIT_CODES = {"completed": 0, "failed": 1, "cancelled": 130}
EXIT_CANNOT_START = 2
EXIT_DATA_LOSS = 3


class RedisBridge:
    """One worker, its proxy on a private bus, and the pump into Redis.

    ``run`` is called once, from the thread that owns the bridge; ``request_stop`` and
    ``force_stop`` from any thread (a signal handler). ``client``: the redis-py client; or
    ``connect``, which makes it once the worker has started (``run`` calls it right after the
    spawn: the import of redis-py then runs beside the worker's start; until it returns, the proxy
    holds the worker's events, ``DeferredGate``). ``publisher`` and ``pump`` exist from then on.
    ``stop_timeout_s``: how long the worker gets to end after SIGTERM before SIGKILL (and how long
    each join of the proxy's threads waits). ``state_dir``: where the seq_id bounds of its streams
    are kept (None: ``default_state_dir()``). ``entry_events``: events of a stream per Redis entry at
    most (> 1: wire format 2, ``redis_packed``). Pump tuning: ``batch_size``, ``high_water``,
    ``low_water``, ``retry_initial_s``, ``retry_max_s``.
    """

    publisher: RedisPublisher
    pump: RedisPump

    def __init__(self, client: redis.Redis | None = None, *, connect: Callable[[], redis.Redis] | None = None,
                 run_id: str | None = None,
                 default_agent_id: str = DEFAULT_AGENT_ID, key_prefix: str = KEY_PREFIX,
                 retention: int | None = DEFAULT_RETENTION, flush_timeout_s: float = 60.0,
                 stop_timeout_s: float = 5.0, name: str = "worker",
                 state_dir: str | os.PathLike[str] | None = None, entry_events: int = 1, **pump_tuning: Any) -> None:
        """Build the bus and proxy, and with ``client`` the publisher and pump. Any thread; no I/O.
        Raises ValueError unless exactly one of ``client`` and ``connect`` is given."""
        if (client is None) == (connect is None):
            raise ValueError("give the client or connect, not both or neither")
        self.bus = RunBus()
        self.seq_state = SeqState(default_state_dir() if state_dir is None else state_dir)
        self._connect = connect
        self._publisher_options: dict[str, Any] = {"key_prefix": key_prefix, "retention": retention,
                                                   "entry_events": entry_events}
        self._pump_tuning = pump_tuning
        self._gate = DeferredGate()
        self._attached = False
        self.flush_timeout_s = flush_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._retry_initial_s = pump_tuning.get("retry_initial_s", 0.05)
        self._retry_max_s = pump_tuning.get("retry_max_s", 2.0)
        self._stop = threading.Event()
        self._force = threading.Event()
        self._stopper: threading.Thread | None = None
        self._stopped_at: float | None = None  # when the stopper thread had ended the worker
        #: Why the worker's telemetry was not read to its end (None: it was).
        self.ingest_error: str | None = None
        #: Why the bridge could not start (None: it could, or the worker could not be started).
        self.start_error: str | None = None
        self._rlog = RateLimitedLog(_log, interval_s=2.0)
        self.proxy = TelemetryProxy(self.bus, default_agent_id=default_agent_id, run_id=run_id,
                                    seq_floor=self._seq_floor, gate=self._gate, name=name,
                                    on_finished=self._wake_pump)  # the owner's wait ends with the run, not poll_s later
        self.flushed: bool | None = None
        self._code: int | None = None
        if client is not None:
            self._attach(client)

    def _attach(self, client: redis.Redis) -> None:
        """The publisher and the pump on ``client``, and the proxy's gate opened to the pump's.
        Owner thread; no I/O (imports redis-py's side of the transport on first use)."""
        from gym_gui.transport.redis_publisher import RedisPublisher
        from gym_gui.transport.redis_pump import RedisPump

        self.publisher = RedisPublisher(client, seq_guard=self.seq_state, **self._publisher_options)
        self.pump = RedisPump(self.bus, self.publisher, **self._pump_tuning)  # subscribed before the gate opens
        self._attached = True
        self._gate.attach(self.pump.gate)
        if self._stop.is_set():
            self.pump.wake()

    def _ensure_attached(self) -> None:
        if not self._attached:
            assert self._connect is not None
            self._attach(self._connect())

    def _wake_pump(self) -> None:
        if self._attached:
            self.pump.wake()

    @property
    def stop_requested(self) -> bool:
        """True once ``request_stop`` (or ``force_stop``) was called. Any thread."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Cancel the run: the worker is asked to stop and what it wrote is still sent. Any thread; never blocks."""
        self._stop.set()
        self._wake_pump()

    def force_stop(self) -> None:
        """Cancel the run and stop waiting: for Redis (unsent events stay unsent) and for the worker's
        telemetry. Any thread; never blocks. ``run`` then returns within about ``stop_timeout_s``."""
        self._force.set()
        self.request_stop()

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, poll_s: float = 0.2) -> int:
        """Run the worker ``argv`` to its end and send everything; returns the exit code.

        Owner thread; blocks until the worker ended and its events are in Redis (or
        ``flush_timeout_s`` passed after it ended); after a stop request or a failure of the proxy's
        reader, at most about ``4 * stop_timeout_s + 2 * flush_timeout_s`` (``stop_timeout_s`` after
        ``force_stop``).
        """
        error = self.seq_state.prepare()
        if error is not None:
            self.start_error = f"cannot keep the seq_id state in {self.seq_state.state_dir} ({error}); " \
                               "give a writable --state-dir"
            _log.error("%s", self.start_error)
            self._cannot_start()
            return EXIT_CANNOT_START
        try:
            self._run(argv, env, poll_s)
        finally:
            self.seq_state.close()  # every bound exact: a restart resumes right after what was sent
        return self.exit_code()

    def _cannot_start(self) -> None:
        self._ensure_attached()
        self.pump.finish(0.0)
        self.flushed = True
        self._code = EXIT_CANNOT_START

    def _run(self, argv: Sequence[str], env: Mapping[str, str] | None, poll_s: float) -> None:
        try:
            self.proxy.spawn(argv, env=env)
        except OSError as exc:
            _log.error("cannot start the worker %r: %s", argv[0] if argv else "", exc)
            self._cannot_start()
            return
        try:
            self._ensure_attached()  # (with ``connect``: redis-py is imported while the worker starts)
            while not self.proxy.finished and self._ingest_going(poll_s):
                self.pump.step(poll_s)
        finally:
            if not self.proxy.finished:  # the loop above gave up or failed: end the worker before sealing
                self.proxy.stop(self.stop_timeout_s)
            if self._attached:
                self.flushed = self.pump.finish(0.0 if self._force.is_set() else self.flush_timeout_s,
                                                abort=self._force)
            self.proxy.stop(self.stop_timeout_s)
            if self._stopper is not None:
                self._stopper.join(2 * self.stop_timeout_s + 1.0)

    def _ingest_going(self, poll_s: float) -> bool:
        """Whether the proxy may still finish: False once it cannot (its reader thread ended without
        finishing, or hangs ``flush_timeout_s`` after the worker was stopped) or on ``force_stop``.
        Starts the stopper thread on a stop request. Owner thread; never blocks."""
        if self._force.is_set():
            self._give_up("the stop was forced before the worker's telemetry ended")
            return False
        if self._stop.is_set() and self._stopper is None:
            self._stopper = threading.Thread(target=self._stop_worker, name="stop-worker", daemon=True)
            self._stopper.start()
        if self.proxy.finished:
            return True
        if not _reader_alive(self.proxy) and not self.proxy.finished:  # it sets ``finished`` before it ends
            self._give_up("the proxy's reader thread ended without finishing the run (see its error above)")
            return False
        stopped_at = self._stopped_at
        if stopped_at is not None and time.monotonic() - stopped_at > self.flush_timeout_s + poll_s:
            self._give_up(f"the proxy's reader did not finish within {self.flush_timeout_s:.1f} s "
                          "after the worker was stopped")
            return False
        return True

    def _stop_worker(self) -> None:
        """Stopper thread: SIGTERM, then SIGKILL after ``stop_timeout_s``, and join the proxy's threads."""
        self.proxy.stop(self.stop_timeout_s)
        self._stopped_at = time.monotonic()
        self._wake_pump()

    def _give_up(self, reason: str) -> None:
        if self.ingest_error is None:
            self.ingest_error = reason
            _log.error("%s; sending what was read and exiting", reason)

    def exit_code(self) -> int:
        """0 if every run that reached Redis completed (3 if lines were rejected or events unencodable
        meanwhile), 130 if one was cancelled (or the stop was forced, or asked for before the worker
        reported any run), 2 if the worker could not start, else 1 (also when its telemetry was not
        read to its end).
        Any thread, after ``run``."""
        if self._code is not None:
            return self._code
        if self._force.is_set():
            return EXIT_CODES["cancelled"]
        if self.ingest_error is not None:
            return 1
        outcomes = set(self.pump.outcomes.values())
        if self.flushed and not outcomes and self._stop.is_set():
            return EXIT_CODES["cancelled"]  # stopped before the worker reported a run (nothing to send)
        if not self.flushed or not outcomes or "failed" in outcomes:
            return 1
        if "cancelled" in outcomes:
            return EXIT_CODES["cancelled"]
        if outcomes != {"completed"}:
            return 1
        # completed, but lines of the worker were rejected (or events could not be encoded): as gym_gui.run
        return EXIT_DATA_LOSS if self.proxy.stats()["rejected_total"] or self.publisher.stats()["unencodable"] else 0

    def _seq_floor(self, run_id: str, agent_id: str | None) -> int | None:
        """Where the stream's numbering continues: the larger of its last seq_id in Redis (retried
        through connection loss) and the bound this machine kept for it. Proxy reader thread; blocks.

        After a stop request it gives up once ``flush_timeout_s`` has passed (the proxy then numbers
        from 1 and Redis refuses ids it already has: counted as duplicates).
        """
        key = self.publisher.key_of(run_id, agent_id)
        try:
            kept = self.seq_state.floor(key)
        except SeqStateError as exc:  # counted and logged; Redis's last id is all that is left
            kept = None
            self.seq_state.count_error(str(exc))
            _log.error("%s; numbering %s/%s after the stream's last id in Redis only (a seq_id may be reused "
                       "if Redis lost the stream)", exc, run_id, agent_id)
        in_redis = self._redis_floor(run_id, agent_id)
        floor = in_redis
        if kept is not None and (in_redis is None or kept > in_redis):
            _log.info("stream %s/%s continues after seq_id %d (kept in %s; Redis's last: %s)",
                      run_id, agent_id, kept, self.seq_state.state_dir, in_redis)
            floor = kept
        self.seq_state.claim(key, floor)  # its first reservation, before any of its events exists
        return floor

    def _redis_floor(self, run_id: str, agent_id: str | None) -> int | None:
        from gym_gui.transport.redis_client import CONNECTION_ERRORS, Backoff

        backoff = Backoff(self._retry_initial_s, self._retry_max_s)
        give_up_at: float | None = None
        while True:
            try:
                return self.publisher.last_seq_id(run_id, agent_id)
            except CONNECTION_ERRORS as exc:
                if self._force.is_set():
                    raise
                if self._stop.is_set():
                    give_up_at = give_up_at or time.monotonic() + self.flush_timeout_s
                    if time.monotonic() >= give_up_at:
                        raise
                delay_s = backoff.next_delay_s()
                self._rlog.log(logging.WARNING, "floor", "cannot read the last seq_id of %s/%s from Redis (%s); "
                               "retrying in %.2f s", run_id, agent_id, exc, delay_s)
                self._force.wait(delay_s)

    def summary(self) -> str:
        """One line: outcome, exit code and the counters (``key=value``). Any thread, after ``run``."""
        pub = self.publisher.stats()
        pump = self.pump.stats()
        proxy = self.proxy.stats()
        outcomes = ",".join(f"{run}:{outcome}" for run, outcome in self.pump.outcomes.items()) or "none"
        fields = {
            "outcomes": outcomes, "exit": self.exit_code(), "sent": pump["sent"], "added": pub["added"],
            "duplicates": pub["duplicates"], "unencodable": pub["unencodable"], "refused": pub["refused"],
            "unsent": pump["backlog"], "streams": pub["streams"], "connection_errors": pump["connection_errors"],
            "reconnects": pump["reconnects"], "rejected_lines": proxy["rejected_total"],
            "paused_s": f"{pump['gate_paused_s']:.2f}", "state_errors": self.seq_state.errors,
            "ingest": "finished" if self.ingest_error is None else "broken",
        }
        return "redis_bridge: " + " ".join(f"{k}={v}" for k, v in fields.items())


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface. Any thread; never blocks."""
    parser = argparse.ArgumentParser(
        prog="python -m gym_gui.transport.redis_bridge",
        description="Run a training worker and publish its telemetry to Redis Streams for a gym_gui on another machine.",
        epilog="Everything after `--` is the worker command.",
    )
    parser.add_argument("--redis-url", required=True, help="e.g. redis://gui-host:6379/0")
    parser.add_argument("--run-id", default=None, help="run id of records without one")
    parser.add_argument("--default-agent-id", default=DEFAULT_AGENT_ID, help="agent id of records without one")
    parser.add_argument("--key-prefix", default=KEY_PREFIX, help="prefix of the stream keys and the index set")
    parser.add_argument("--retention", type=int, default=DEFAULT_RETENTION,
                        help="entries kept per stream (MAXLEN ~); 0 = unbounded")
    parser.add_argument("--batch-size", type=int, default=512, help="events per XADD pipeline")
    parser.add_argument("--entry-events", type=int, default=1,
                        help="events of a stream per Redis entry at most; above 1 the entries are of wire "
                             "format 2, which GUIs before it count as rejected")
    parser.add_argument("--high-water", type=int, default=20_000, help="unsent events that pause the worker")
    parser.add_argument("--low-water", type=int, default=5_000, help="unsent events at which it resumes")
    parser.add_argument("--retry-max-s", type=float, default=2.0, help="longest wait between reconnection attempts")
    parser.add_argument("--connect-timeout-s", type=float, default=10.0, help="how long to try reaching Redis at start")
    parser.add_argument("--flush-timeout-s", type=float, default=60.0,
                        help="how long to keep trying to send the last events once the worker ended")
    parser.add_argument("--stop-timeout-s", type=float, default=5.0,
                        help="how long the worker gets to end after SIGTERM before SIGKILL")
    parser.add_argument("--state-dir", default=None,
                        help="where the last seq_id sent per stream is kept, so a restarted bridge never reuses one "
                             f"(default: {default_state_dir()})")
    parser.add_argument("--log-level", default="WARNING")
    return parser


def _split_command(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    argv = list(argv)
    if "--" in argv:
        cut = argv.index("--")
        return argv[:cut], argv[cut + 1:]
    return argv, []


def wait_for_redis(client: redis.Redis, timeout_s: float) -> str | None:
    """PING until it answers or ``timeout_s`` passes; None when reachable, else the last error.

    Any thread; blocks up to ``timeout_s``."""
    import redis

    from gym_gui.transport.redis_client import CONNECTION_ERRORS, Backoff

    deadline = time.monotonic() + timeout_s
    backoff = Backoff(0.05, 1.0)
    while True:
        try:
            client.ping()
            return None
        except CONNECTION_ERRORS as exc:
            error = f"{type(exc).__name__}: {exc}"
        except redis.RedisError as exc:  # e.g. NOAUTH: waiting will not help
            return f"{type(exc).__name__}: {exc}"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return error
        threading.Event().wait(min(remaining, backoff.next_delay_s()))


def _where(client: redis.Redis) -> str:
    kw = client.connection_pool.connection_kwargs
    return f"{kw.get('host', kw.get('path', '?'))}:{kw.get('port', '')}/{kw.get('db', 0)}"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run one worker through the bridge. Main thread (it installs SIGINT/SIGTERM/SIGHUP handlers); blocks."""
    out = out or sys.stdout
    parser = build_parser()
    own_args, command = _split_command(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(own_args)
    if not command:
        parser.error("give the worker command after `--`")
    if args.entry_events < 1:
        parser.error("--entry-events must be at least 1")
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tune_gc()
    options: dict[str, Any] = dict(
        run_id=args.run_id, default_agent_id=args.default_agent_id, key_prefix=args.key_prefix,
        retention=args.retention or None, flush_timeout_s=args.flush_timeout_s, stop_timeout_s=args.stop_timeout_s,
        state_dir=args.state_dir, entry_events=args.entry_events, batch_size=args.batch_size,
        high_water=args.high_water, low_water=args.low_water, retry_max_s=args.retry_max_s)
    clients: list[redis.Redis] = []
    started = time.monotonic()
    where = ping_once(args.redis_url, min(args.connect_timeout_s, 2.0), client_name=BRIDGE_CLIENT_NAME)
    if where is not None:  # Redis answers: the worker starts now, redis-py is imported while it does
        def connect() -> redis.Redis:
            from gym_gui.transport.redis_client import make_client

            clients.append(make_client(args.redis_url, client_name=BRIDGE_CLIENT_NAME))
            return clients[0]

        bridge = RedisBridge(connect=connect, **options)
    else:  # not reached at the first try, or a URL the preflight leaves to redis-py: as redis-py says
        from gym_gui.transport.redis_client import make_client

        try:
            clients.append(make_client(args.redis_url, client_name=BRIDGE_CLIENT_NAME))
        except ValueError as exc:
            print(f"redis_bridge: bad --redis-url: {exc}", file=out)
            return EXIT_CANNOT_START
        where = _where(clients[0])
        error = wait_for_redis(clients[0], max(0.0, args.connect_timeout_s - (time.monotonic() - started)))
        if error is not None:
            print(f"redis_bridge: cannot reach Redis at {where}: {error}", file=out)
            return EXIT_CANNOT_START
        bridge = RedisBridge(clients[0], **options)
    print(f"redis_bridge: {' '.join(command)} -> {where}", file=out, flush=True)

    received = itertools.count()

    def on_signal(signum: int) -> None:  # on the relay's thread: it may take locks
        if next(received) == 0:
            bridge.request_stop()
            _log.warning("%s: stopping the worker", signal.Signals(signum).name)
        else:
            bridge.force_stop()
            _log.warning("%s again: no more waiting for Redis or the worker's telemetry", signal.Signals(signum).name)

    try:
        with SignalRelay(on_signal, (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)):  # (SIGHUP: the ssh session closed)
            code = bridge.run(command)
    finally:
        for client in clients:
            client.close()
    if bridge.start_error is not None:
        print(f"redis_bridge: {bridge.start_error}", file=out, flush=True)
    print(bridge.summary(), file=out, flush=True)
    if not bridge.flushed:
        print(f"redis_bridge: WARNING: {bridge.pump.backlog()} events were not sent to Redis", file=out, flush=True)
    if bridge.ingest_error is not None:
        print(f"redis_bridge: WARNING: {bridge.ingest_error}", file=out, flush=True)
    if bridge.seq_state.errors:
        print(f"redis_bridge: WARNING: the seq_id state in {bridge.seq_state.state_dir} could not be kept "
              f"({bridge.seq_state.last_error}): a bridge restarted with this run id after Redis lost its data "
              "may reuse seq_ids", file=out, flush=True)
    return code


def _reader_alive(proxy: TelemetryProxy) -> bool:
    """Whether the proxy's reader thread is alive (True before it exists). Any thread; never blocks."""
    reader = getattr(proxy, "_reader", None)  # the proxy offers no accessor; its absence means "alive"
    return reader is None or reader.is_alive()


if __name__ == "__main__":
    command_exit(main)

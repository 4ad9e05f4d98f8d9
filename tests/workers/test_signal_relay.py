"""SignalRelay: callbacks run on the relay thread, in order, and the relay stops and restores handlers."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

from gym_gui.signal_relay import SignalRelay
from worker_helpers import REPO, worker_env


def test_the_callback_runs_on_the_relay_thread_and_close_restores_the_handler() -> None:
    previous = signal.getsignal(signal.SIGUSR1)
    seen: list[tuple[int, str]] = []
    done = threading.Event()

    def callback(signum: int) -> None:
        seen.append((signum, threading.current_thread().name))
        done.set()

    relay = SignalRelay(callback, (signal.SIGUSR1,))
    with relay:
        assert relay.running
        assert signal.getsignal(signal.SIGUSR1) is not previous
        os.kill(os.getpid(), signal.SIGUSR1)
        assert done.wait(10)
    assert seen == [(signal.SIGUSR1, "signal-relay")]
    assert not relay.running
    assert signal.getsignal(signal.SIGUSR1) is previous


def test_signals_received_before_close_still_reach_the_callback() -> None:
    seen: list[int] = []
    relay = SignalRelay(seen.append, (signal.SIGUSR1, signal.SIGUSR2))
    relay.install()
    signal.raise_signal(signal.SIGUSR1)  # handlers run before raise_signal returns
    signal.raise_signal(signal.SIGUSR2)
    assert relay.close()
    assert seen == [signal.SIGUSR1, signal.SIGUSR2]


def test_a_failing_callback_is_logged_and_the_relay_goes_on(caplog) -> None:
    seen: list[int] = []

    def callback(signum: int) -> None:
        seen.append(signum)
        if len(seen) == 1:
            raise ValueError("first one fails")

    relay = SignalRelay(callback, (signal.SIGUSR1,))
    relay.install()
    signal.raise_signal(signal.SIGUSR1)
    signal.raise_signal(signal.SIGUSR1)
    assert relay.close()
    assert seen == [signal.SIGUSR1, signal.SIGUSR1]
    assert "SIGUSR1 callback failed" in caplog.text


_CHILD = textwrap.dedent(
    """
    import signal, sys, threading
    from gym_gui.signal_relay import SignalRelay
    from gym_gui.workers.runtime import CancelToken

    cancel = CancelToken()
    poke = threading.Event()
    count = 0

    def on_usr1(_signum):
        global count
        count += 1
        poke.set()  # takes the event's lock: deadlocks if run inside the main thread's wait
        if count == 300:
            print("busy", flush=True)

    with cancel.relay_signals(), SignalRelay(on_usr1, (signal.SIGUSR1,)):
        print("ready", flush=True)
        while not cancel.cancelled:
            poke.wait(0.0002)
            poke.clear()
    print("cancelled", cancel.signal_name, flush=True)
    """
)


def test_a_signal_storm_during_event_waits_never_hangs_the_process() -> None:
    """Hundreds of signals land while the main thread waits on an event whose lock the callback
    takes; the process still ends on SIGTERM (a handler taking the lock itself hangs it)."""
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, cwd=REPO, env=worker_env())
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 60
        while not select.select([proc.stdout], [], [], 0.001)[0]:
            assert time.monotonic() < deadline and proc.poll() is None
            os.kill(proc.pid, signal.SIGUSR1)
        assert proc.stdout.readline() == b"busy\n"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert out == b"cancelled SIGTERM\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

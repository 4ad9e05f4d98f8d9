"""Redis key names and stream entry ids of the telemetry transport (Qt-free, pure functions).

One Redis stream per telemetry stream ``(run_id, agent_id)``, keyed
``{prefix}:{quote(run_id)}:{quote(agent_id)}`` (percent-encoded, so a ``:`` in an id cannot
shift the parts; an agent id of None is the empty part, which no real id can be). Writers add
every stream key to the index set ``{prefix}:index`` so readers discover new streams, and announce
a stream they index for the first time on the stream ``{prefix}:announce`` (an entry ``stream K``),
which readers block on beside their streams, so they discover it at once instead of at their next
look at the index.

An event's entry id is ``{seq_id}-1``: the millisecond part carries the seq_id, the sequence part
is always 1, so every ``seq_id >= 0`` has a valid id (Redis refuses ``0-0``). XADD with an explicit
id is refused when the id is not greater than the stream's last one: re-publishing is idempotent.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from gym_gui.ingest.record_fields import MAX_ID_CHARS
from gym_gui.telemetry.events import MAX_SEQ_ID, StreamKey

__all__ = [
    "ANNOUNCE_MAXLEN",
    "DEFAULT_RETENTION",
    "KEY_PREFIX",
    "announce_key",
    "cursor_after",
    "entry_id",
    "index_key",
    "parse_stream_key",
    "seq_from_entry_id",
    "seq_of_any_id",
    "stream_key",
]

#: Default prefix of every key the transport writes.
KEY_PREFIX = "gym_gui:telemetry"
#: Entries kept per stream by default (approximately: Redis trims whole nodes): ~30 MB of ToyText steps.
DEFAULT_RETENTION = 100_000
_SEQ_PART = "1"
_SEQ_SUFFIX = b"-1"


def _encode_id(value: str) -> str:
    return quote(value, safe="", errors="surrogatepass")


def stream_key(run_id: str, agent_id: str | None, *, prefix: str = KEY_PREFIX) -> str:
    """The Redis stream key of ``(run_id, agent_id)``. Any thread."""
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    agent = "" if agent_id is None else _encode_id(agent_id)
    return f"{prefix}:{_encode_id(run_id)}:{agent}"


def index_key(prefix: str = KEY_PREFIX) -> str:
    """The set of every stream key written under ``prefix`` (never a valid stream key). Any thread."""
    return f"{prefix}:index"


#: The announcement stream is trimmed to about this many entries (``MAXLEN ~``): a reader needs only
#: the entries after its last look at the index, which it re-reads every second or so.
ANNOUNCE_MAXLEN = 1000


def announce_key(prefix: str = KEY_PREFIX) -> str:
    """The stream on which writers announce the streams they index (never a valid stream key). Any thread."""
    return f"{prefix}:announce"


def parse_stream_key(key: str | bytes, *, prefix: str = KEY_PREFIX) -> StreamKey | None:
    """``(run_id, agent_id)`` of a stream key, or None if ``key`` is not one under ``prefix``. Any thread."""
    if isinstance(key, bytes):
        try:
            key = key.decode("utf-8")
        except UnicodeDecodeError:
            return None
    head = prefix + ":"
    if not key.startswith(head):
        return None
    parts = key[len(head):].split(":")
    if len(parts) != 2 or not parts[0]:
        return None
    try:
        run_id = unquote(parts[0], errors="strict")
        agent_id = unquote(parts[1], errors="strict") if parts[1] else None
    except UnicodeDecodeError:
        return None
    if stream_key(run_id, agent_id, prefix=prefix) != key:  # not in our canonical encoding
        return None
    if len(run_id) > MAX_ID_CHARS or (agent_id is not None and len(agent_id) > MAX_ID_CHARS):
        return None  # an id the proxy would refuse (``id_too_long``): memory for ids stays bounded
    return run_id, agent_id


def entry_id(seq_id: int) -> str:
    """The stream entry id of ``seq_id`` (``"{seq_id}-1"``). Any thread."""
    if type(seq_id) is not int or seq_id < 0:
        raise ValueError(f"seq_id must be an int >= 0, got {seq_id!r}")
    return f"{seq_id}-{_SEQ_PART}"


def cursor_after(seq_id: int | None) -> str:
    """The XREAD id that returns the entries after ``seq_id`` (None: from the start). Any thread."""
    return "0-0" if seq_id is None else entry_id(seq_id)


_MAX_SEQ_DIGITS = len(str(MAX_SEQ_ID))
#: Redis entry id parts are 64-bit unsigned: at most 20 digits.
_MAX_ID_DIGITS = 20


def seq_from_entry_id(raw: str | bytes) -> int | None:
    """The seq_id an entry id encodes, or None if it is not ``"{digits}-1"`` with a seq_id the store
    can hold (at most ``MAX_SEQ_ID``). Any thread."""
    if isinstance(raw, str):
        raw = raw.encode("ascii", "replace")
    if not raw.endswith(_SEQ_SUFFIX):
        return None
    digits = raw[:-2]
    if not digits.isdigit() or (len(digits) > 1 and digits[0:1] == b"0") or len(digits) > _MAX_SEQ_DIGITS:
        return None
    seq = int(digits)
    return seq if seq <= MAX_SEQ_ID else None


def seq_of_any_id(raw: str | bytes | None) -> int | None:
    """The millisecond part of any well-formed entry id (``"{ms}-{seq}"``), or None. Any thread."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    ms, sep, seq = raw.partition("-")
    if not sep or not raw.isascii() or not ms.isdigit() or not seq.isdigit() or len(ms) > _MAX_ID_DIGITS:
        return None
    return int(ms)

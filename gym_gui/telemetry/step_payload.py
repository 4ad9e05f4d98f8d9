"""StepPayload: a well-formed step's payload with ``info`` and ``render_payload`` kept as JSON text (Qt-free).

Most steps a worker sends have the same shape: int indices, a reward, two flags, an action and an
observation, an ``info`` object and a render payload (or None). For those the proxy publishes a
StepPayload instead of a dict. It is a read-only ``Mapping`` with the same keys and values as the
dict would have, but ``info`` and ``render_payload`` travel as the JSON text the store writes
(made once, by the proxy's decoding side, with ``json_text.encode_json``) and are decoded only when
someone reads them. At full speed the live path looks at a few frames per poll and the sink stores
the text as it is, so most steps are never re-encoded or decoded in the GUI process, and each event
is a flat tuple instead of nested dicts (cheaper to move between processes and to free).
See docs/architecture.md ("Event payloads") and docs/performance.md ("End to end").
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

from gym_gui.telemetry.json_text import dump_json, encode_json, load_json

__all__ = ["STEP_PAYLOAD_KEYS", "StepFields", "StepPayload", "compact_step", "fits_typed_columns", "step_payload_of"]

#: The keys of every StepPayload, in the order of ``StepPayload.fields``.
STEP_PAYLOAD_KEYS: tuple[str, ...] = (
    "episode_index", "step_index", "action", "observation", "reward", "terminated", "truncated",
    "info", "render_payload",
)
#: ``(episode_index, step_index, action, observation, reward, terminated, truncated, info_json,
#: render_payload_json or None)``: a StepPayload's values, the two objects as JSON text.
StepFields = tuple[int, int, Any, Any, "float | int", bool, bool, str, "str | None"]

_INDEX = {key: i for i, key in enumerate(STEP_PAYLOAD_KEYS)}
_INFO = 7
_RENDER = 8
_N_KEYS = len(STEP_PAYLOAD_KEYS)
_INT_MIN = -(1 << 63)
_INT_MAX = (1 << 63) - 1
_MISSING: Any = object()


class StepPayload(Mapping[str, Any]):
    """Read-only mapping of a step payload; ``info``/``render_payload`` decoded on first read.

    Any thread may read it. Decoding is cached per object; two threads reading a key for the first
    time at once may each decode it and see equal, not identical, values. Compares equal to a dict
    with the same items. Build one with ``compact_step``; ``StepPayload(fields)`` trusts ``fields``.
    """

    __slots__ = ("fields", "_info", "_render")

    def __init__(self, fields: StepFields) -> None:
        #: The values as ``StepFields`` (read-only by convention: the store writes the texts as they are).
        self.fields = fields

    def __getitem__(self, key: str) -> Any:
        index = _INDEX[key]
        if index < _INFO:
            return self.fields[index]
        return self._decoded(index)

    def get(self, key: str, default: Any = None) -> Any:  # faster than Mapping.get's try/except
        index = _INDEX.get(key)
        if index is None:
            return default
        if index < _INFO:
            return self.fields[index]
        return self._decoded(index)

    def __contains__(self, key: object) -> bool:
        return key in _INDEX

    def __iter__(self) -> Iterator[str]:
        return iter(STEP_PAYLOAD_KEYS)

    def __len__(self) -> int:
        return _N_KEYS

    def __repr__(self) -> str:
        return f"StepPayload({dict(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (StepPayload, (self.fields,))

    def to_json(self) -> str:
        """The payload as compact JSON text, keys in ``STEP_PAYLOAD_KEYS`` order, without decoding.

        Means what ``json_text.dump_json(dict(self))`` means. Any thread; pure.
        """
        ep, si, action, observation, reward, terminated, truncated, info_json, render_json = self.fields
        return (
            f'{{"episode_index":{int.__repr__(ep)},"step_index":{int.__repr__(si)},'
            f'"action":{dump_json(action)},"observation":{dump_json(observation)},"reward":{dump_json(reward)},'
            f'"terminated":{"true" if terminated else "false"},"truncated":{"true" if truncated else "false"},'
            f'"info":{info_json},"render_payload":{"null" if render_json is None else render_json}}}'
        )

    def _decoded(self, index: int) -> Any:
        if index == _INFO:
            try:
                return self._info
            except AttributeError:
                value = self._info = load_json(self.fields[_INFO])
                return value
        try:
            return self._render
        except AttributeError:
            text = self.fields[_RENDER]
            value = self._render = None if text is None else load_json(text)
            return value


def fits_typed_columns(episode_index: Any, step_index: Any, reward: Any, terminated: Any, truncated: Any) -> bool:
    """True when these values go into the ``steps`` table's typed columns as they are. Any thread; pure.

    64-bit int indices, bool flags, a float reward that is not NaN (SQLite would store NULL) or a
    64-bit int reward. The store (``sqlite_rows``) keeps any other value in ``extra_json``; a
    StepPayload is only made of values that fit, so its row is the one its dict would give.
    """
    return (
        type(episode_index) is int and type(step_index) is int and type(terminated) is bool
        and type(truncated) is bool
        and _INT_MIN <= episode_index <= _INT_MAX and _INT_MIN <= step_index <= _INT_MAX
        and (type(reward) is float and reward == reward or type(reward) is int and _INT_MIN <= reward <= _INT_MAX)
    )


def compact_step(payload: Mapping[str, Any]) -> StepPayload | None:
    """``payload`` as a StepPayload, or None when it has another shape (then it stays as it is).

    The shape: exactly the keys of ``STEP_PAYLOAD_KEYS``; indices, reward and flags that
    ``fits_typed_columns``; a dict ``info``; a dict or None ``render_payload``; the two objects
    encodable. These are the steps the store writes without extras. Any thread; pure.
    """
    if len(payload) != _N_KEYS:
        return None
    get = payload.get
    info = get("info")
    render = get("render_payload", _MISSING)
    action = get("action", _MISSING)
    observation = get("observation", _MISSING)
    if (type(info) is not dict or not (render is None or type(render) is dict)
            or action is _MISSING or observation is _MISSING):
        return None
    return step_payload_of(get("episode_index"), get("step_index"), action, observation, get("reward"),
                           get("terminated"), get("truncated"), info, render)


def step_payload_of(episode_index: Any, step_index: Any, action: Any, observation: Any, reward: Any,
                    terminated: Any, truncated: Any, info: dict[str, Any],
                    render_payload: dict[str, Any] | None) -> StepPayload | None:
    """A StepPayload of these values, or None unless the indices, reward and flags ``fits_typed_columns``.

    ``info`` must be a dict and ``render_payload`` a dict or None (the caller's check); None too
    when either cannot be encoded. Any thread; pure.
    """
    if not fits_typed_columns(episode_index, step_index, reward, terminated, truncated):
        return None
    try:
        info_json = encode_json(info)
        render_json = None if render_payload is None else encode_json(render_payload)
    except Exception:  # not encodable: the store reports it as it does for any dict payload
        return None
    return StepPayload((episode_index, step_index, action, observation, reward, terminated, truncated,
                        info_json, render_json))

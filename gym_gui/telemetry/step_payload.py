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

__all__ = ["STEP_PAYLOAD_KEYS", "StepFields", "StepPayload", "compact_step", "step_payload_of"]

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


def compact_step(payload: Mapping[str, Any]) -> StepPayload | None:
    """``payload`` as a StepPayload, or None when it has another shape (then it stays as it is).

    The shape: exactly the keys of ``STEP_PAYLOAD_KEYS``; 64-bit int indices; bool flags; a float
    (not NaN) or 64-bit int reward; a dict ``info``; a dict or None ``render_payload``; the two
    objects encodable. These are the steps the store writes without extras, so a StepPayload's row
    is the one its dict would give. Any thread; pure.
    """
    if len(payload) != _N_KEYS:
        return None
    get = payload.get
    ep = get("episode_index")
    si = get("step_index")
    reward = get("reward")
    term = get("terminated")
    trunc = get("truncated")
    info = get("info")
    render = get("render_payload", _MISSING)
    action = get("action", _MISSING)
    observation = get("observation", _MISSING)
    if not (
        type(ep) is int and type(si) is int and type(term) is bool and type(trunc) is bool
        and (type(reward) is float or type(reward) is int)
        and type(info) is dict and (render is None or type(render) is dict)
        and action is not _MISSING and observation is not _MISSING
    ):
        return None
    return step_payload_of(ep, si, action, observation, reward, term, trunc, info, render)


def step_payload_of(episode_index: int, step_index: int, action: Any, observation: Any, reward: float | int,
                    terminated: bool, truncated: bool, info: dict[str, Any],
                    render_payload: dict[str, Any] | None) -> StepPayload | None:
    """A StepPayload of values whose types the caller has checked (those ``compact_step`` checks).

    Checks the rest of the shape (64-bit indices and int reward, a reward that is not NaN) and
    encodes the two objects; None when the values do not fit. Any thread; pure.
    """
    if not (
        _INT_MIN <= episode_index <= _INT_MAX and _INT_MIN <= step_index <= _INT_MAX
        and (reward == reward if type(reward) is float else _INT_MIN <= reward <= _INT_MAX)  # NaN: kept in extras
    ):
        return None
    try:
        info_json = encode_json(info)
        render_json = None if render_payload is None else encode_json(render_payload)
    except Exception:  # not encodable: the store reports it as it does for any dict payload
        return None
    return StepPayload((episode_index, step_index, action, observation, reward, terminated, truncated,
                        info_json, render_json))

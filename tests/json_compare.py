"""Strict equality of decoded JSON values, for tests that compare two encoders or decoders."""

from __future__ import annotations

import math
from typing import Any


def same_json(a: Any, b: Any) -> bool:
    """Equal values of equal types all the way down (1 != 1.0 here, unlike ==); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)

"""Arrays in JSON: float and integer arrays as base64 of their bytes, labels as text."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np


def encode_values(values: np.ndarray) -> Any:
    """A sample column for JSON: float64 as base64, labels as a list of text or null."""
    if values.dtype.kind == "f":
        return encode_array(values)
    return {"texts": values.tolist()}


def decode_values(data: Mapping[str, Any]) -> np.ndarray:
    if "texts" in data:
        return np.array(data["texts"], dtype=object)
    return decode_array(data)


def encode_array(array: np.ndarray) -> dict[str, str]:
    array = np.ascontiguousarray(array)
    return {"dtype": array.dtype.str, "b64": base64.b64encode(array.tobytes()).decode()}


def decode_array(data: Mapping[str, str | bytes]) -> np.ndarray:
    """An :func:`encode_array` array; its data may be raw bytes (a binary profile)."""
    raw = data["b64"]
    buffer = raw if isinstance(raw, bytes) else base64.b64decode(raw)
    return np.frombuffer(buffer, dtype=np.dtype(str(data["dtype"]))).copy()


def binary_arrays(data: Any) -> Any:
    """``data`` (JSON-ready, with :func:`encode_array` arrays) with each array's base64
    text replaced by its bytes, for msgpack: a fourth smaller, and read without decoding."""
    if isinstance(data, dict):
        if data.keys() == {"dtype", "b64"}:
            return {"dtype": data["dtype"], "b64": base64.b64decode(data["b64"])}
        return {k: binary_arrays(v) for k, v in data.items()}
    if isinstance(data, list):
        return [binary_arrays(v) for v in data]
    return data

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


def decode_array(data: Mapping[str, str]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(data["b64"]), dtype=np.dtype(data["dtype"])).copy()

"""The reference profile as the statistics job uses it: loaded from the store, or built.

A profile is built once per model version and reference file (its fingerprint), with
every column's null distribution, and stored (msgpack, arrays as bytes); every later run, restart and
process (the Spark backend included) loads it, so calibrated thresholds cost nothing at
run time. A rebuild happens only when the reference changed, when the stored profile
predates stored calibration, or when asked, and is logged with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from monitor.drift.profile import (
    ReferenceProfile,
    fit_profile,
    profile_from_stored,
    profile_to_binary,
)
from monitor.records import FeatureType

logger = logging.getLogger(__name__)

Columns = tuple[Mapping[str, np.ndarray], Mapping[str, FeatureType]]


class ProfileRepository(Protocol):
    def profile(self, model: str, version: str) -> str | bytes | memoryview | None: ...

    def save_profile(self, model: str, version: str, profile: bytes) -> None: ...


def load_profile(
    repository: ProfileRepository,
    model: str,
    version: str,
    source: str | None,
    reference: Callable[[], Columns],
    *,
    rebuild: bool = False,
    **options: Any,
) -> ReferenceProfile:
    """The stored profile of ``model`` ``version``, built and stored when missing.

    ``source`` fingerprints the reference file (None when it is gone: the stored profile
    is then used whatever it was built from); ``reference`` reads its columns and schema
    when a build is needed; ``options`` go to :func:`fit_profile`.
    """
    stored = None if rebuild else repository.profile(model, version)
    reason = "asked" if rebuild else "no stored profile"
    if stored:
        profile, built_from = profile_from_stored(stored)
        del stored  # the text is as large as the profile's arrays
        if source is None or built_from == source:
            if profile.calibrated:
                return profile
            reason = "the stored profile has no calibration of this version"
        else:
            reason = f"the reference changed ({built_from} -> {source})"
    logger.info("building the reference profile of %s version %s: %s", model, version, reason)
    columns, schema = reference()
    profile = fit_profile(columns, schema, model_version=version, **options)
    repository.save_profile(model, version, profile_to_binary(profile, source))
    logger.info(
        "stored the reference profile of %s version %s (%d rows, %d calibrated columns)",
        model,
        version,
        profile.rows,
        len(profile.nulls),
    )
    return profile

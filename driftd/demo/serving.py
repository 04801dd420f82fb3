"""The demo's serving side: what ``driftd serve`` does, in process and in simulated time.

``driftd serve`` answers one HTTP request at a time with the wall clock's timestamp; the
demo replays an hour of traffic in one call. So the demo uses the server's parts and not
its HTTP front: the same model source (the registry's ``champion`` and, while its A/B
test runs, ``challenger``, reloaded when an alias or the experiment's phase moves), the
same variant assignment (a hash of the request id against the configured share) and the
same log contract (``model_version`` and ``variant`` on every record).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from driftd.demo.data import FEATURES, Served
from driftd.serve.models import ModelSource, ServedModels
from driftd.serve.scoring import assign_variant


class DemoServer:
    """Scores batches of requests with the models ``source`` serves now."""

    def __init__(self, source: ModelSource, share: Callable[[], float]) -> None:
        self.models = ServedModels(source)
        self.share = share

    def refresh(self) -> str | None:
        """Reload when an alias (or the experiment's phase) moved; what serves now, when
        that changed."""
        if not self.models.refresh():
            return None
        return self.describe()

    def describe(self) -> str:
        loaded = self.models.current
        if loaded.challenger is None:
            return f"serving champion v{loaded.champion.version} on all traffic"
        return (
            f"serving champion v{loaded.champion.version}, challenger "
            f"v{loaded.challenger.version} on {self.share():.0%} of request ids (A/B test)"
        )

    def __call__(self, ids: list[str], features: pd.DataFrame) -> Served:
        loaded = self.models.current
        share = self.share()
        has_challenger = loaded.challenger is not None
        variants = [assign_variant(i, share, has_challenger=has_challenger) for i in ids]
        versions = [""] * len(ids)
        scores = np.empty(len(ids), dtype=float)
        frame = features[list(FEATURES)]
        for arm, model in (("champion", loaded.champion), ("challenger", loaded.challenger)):
            rows = [k for k, v in enumerate(variants) if v == arm]
            if not rows or model is None:
                continue
            scores[rows] = np.ravel(model.predict_scores(frame.iloc[rows]))
            for k in rows:
                versions[k] = str(model.version)
        return Served(variants, versions, scores)


__all__ = ["DemoServer"]

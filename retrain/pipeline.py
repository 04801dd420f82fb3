"""One retraining attempt, from rows to a gated candidate (the retrain job's core).

::

    assemble (reference + production) -> data-validation gate -> blocked?
        -> trainer.fit(train, validation) -> score the final test (candidate, champion)
        -> gates -> rejected / passed

The job around it (trigger, lock, registry, storage of the results) belongs to the
caller: this function does no I/O beyond what the trainer does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pandas as pd

from retrain.dataset import DatasetSpec, TrainingSet, assemble
from retrain.gates import GateReport, GateSpec, evaluate
from retrain.trainers import Candidate, Trainer, TrainerSpec, trainer_for

logger = logging.getLogger(__name__)

Status = Literal["blocked", "rejected", "passed"]


@dataclass(frozen=True)
class Attempt:
    status: Status  # blocked by data validation, rejected by the gates, or passed
    reason: str
    training_set: TrainingSet
    candidate: Candidate | None
    gates: GateReport | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        ts = self.training_set
        return {
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "window": {
                "start": ts.start.isoformat(),
                "end": ts.end.isoformat(),
                "test_start": ts.test_start.isoformat(),
            },
            "rows": {
                "train": len(ts.train),
                "validation": len(ts.validation),
                "test": len(ts.test),
            },
            "provenance": {k: dict(v) for k, v in ts.provenance.items()},
            "data_validation": ts.validation_report.to_dict(),
            "candidate": None
            if self.candidate is None
            else {
                "framework": self.candidate.framework,
                "params": dict(self.candidate.params),
            },
            "gates": None if self.gates is None else self.gates.to_dict(),
        }


def attempt(
    reference: pd.DataFrame,
    production: pd.DataFrame,
    *,
    dataset: DatasetSpec,
    trainer: TrainerSpec,
    gates: GateSpec,
    now: datetime,
    champion: Candidate | None = None,
    fit: Trainer | None = None,
) -> Attempt:
    """Build the training set, train when the data passes, and gate the candidate.

    ``champion`` (the registered champion, loaded) is scored on the same final-test rows;
    ``fit`` overrides the trainer ``trainer.framework`` names (tests, custom wiring).
    """
    started = time.perf_counter()
    training_set = assemble(reference, production, dataset, now=now)
    report = training_set.validation_report
    if not report.passed:
        logger.warning("retraining blocked by data validation: %s", report.reason())
        return Attempt("blocked", report.reason(), training_set, None, None, _since(started))
    native = champion.native if champion is not None else None
    chosen = fit or trainer_for(trainer, champion=native)
    candidate = chosen.fit(training_set.train, training_set.validation, trainer)
    test = training_set.test
    result = evaluate(
        test[dataset.target].to_numpy(dtype=int),
        candidate.predict_scores(test),
        gates,
        baseline_rate=training_set.baseline_rate,
        champion_scores=None if champion is None else champion.predict_scores(test),
        frame=test,
    )
    status: Status = "passed" if result.passed else "rejected"
    logger.info("retraining %s: %s", status, result.reason())
    return Attempt(status, result.reason(), training_set, candidate, result, _since(started))


def _since(started: float) -> float:
    return time.perf_counter() - started

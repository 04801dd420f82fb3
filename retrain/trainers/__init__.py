"""Trainers behind one interface (:mod:`retrain.trainers.base`): Keras, scikit-learn and
the team's own entry point. :func:`trainer_for` picks one by ``spec.framework``."""

from __future__ import annotations

from typing import Any

from retrain.trainers.base import Candidate, Trainer, TrainerSpec, load, save


def trainer_for(spec: TrainerSpec, *, champion: Any = None) -> Trainer:
    """The trainer ``spec.framework`` names; ``champion`` (its native model, when known)
    lets the scikit-learn trainer keep the champion's estimator family."""
    if spec.framework == "keras":
        from retrain.trainers.keras import KerasTrainer

        return KerasTrainer()
    if spec.framework == "sklearn":
        from retrain.trainers.sklearn import SklearnTrainer

        return SklearnTrainer(champion=champion)
    from retrain.trainers.custom import CustomTrainer

    return CustomTrainer()


__all__ = ["Candidate", "Trainer", "TrainerSpec", "load", "save", "trainer_for"]

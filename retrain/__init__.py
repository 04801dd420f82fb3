"""Retraining: the next training set, trainers, gates and exports.

- :mod:`retrain.dataset` / :mod:`retrain.validation`: the reference plus matured
  labelled production rows, split by time, behind the data-validation gate;
- :mod:`retrain.trainers`: ``fit(train, validation, spec) -> Candidate`` for Keras,
  scikit-learn and the team's own entry point; ``save`` / ``load``;
- :mod:`retrain.gates`: may the candidate become the challenger (paired tests against
  the trivial baseline and the champion on the final-test rows, slices);
- :mod:`retrain.export`: SavedModel and TensorFlow Lite exports of a Keras candidate.

TensorFlow is imported only by :mod:`retrain.trainers.keras` and :mod:`retrain.export`.
"""

"""Drift statistics: per-column drift methods, the reference profile and window states.

- :mod:`monitor.drift.methods`: the registry of per-column drift methods with Evidently's
  names, thresholds and drift decisions, and :func:`~monitor.drift.methods.auto_method`,
  Evidently's default choice of method.
- :mod:`monitor.drift.samples`: :class:`~monitor.drift.samples.ReferenceColumn`, a column's
  finite values sorted and counted once, so a reference is prepared once and reused.
- :mod:`monitor.drift.ranked` (tests on the values: KS, Wasserstein, Anderson-Darling, ...)
  and :mod:`monitor.drift.binned` (tests on counts: PSI, Jensen-Shannon, chi-square, ...).
- The other modules hold the frozen reference profile, the mergeable window states and
  the data-quality checks.
"""

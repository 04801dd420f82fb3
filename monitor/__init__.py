"""Monitoring: ingestion of prediction and label logs, and the drift statistics.

Importing this package loads nothing heavy: statistics modules need only numpy, scipy
and pandas; ingestion (:mod:`monitor.ingest`) brings in :mod:`storage`; Spark is loaded
only by :mod:`monitor.spark`.
"""

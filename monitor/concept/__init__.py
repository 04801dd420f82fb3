"""Concept drift: realized performance once labels mature, label-free estimates before,
and sequential detectors on the stream of per-prediction errors (pure; no I/O)."""

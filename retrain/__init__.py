"""Retraining, gating, shadow scoring and promotion. Not implemented yet; the registry
tables (model_versions, model_aliases) exist in :mod:`storage`."""

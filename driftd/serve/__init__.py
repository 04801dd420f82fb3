"""``driftd serve``: the reference prediction service that closes the loop on one machine.

:mod:`~driftd.serve.config` (the ``serve:`` section), :mod:`~driftd.serve.models` (the
champion and challenger, reloaded when an alias moves), :mod:`~driftd.serve.schema`
(requests from the feature schema), :mod:`~driftd.serve.scoring` (the A/B arm, the
prediction), :mod:`~driftd.serve.log` (the contract log), :mod:`~driftd.serve.app` (the
FastAPI application). Only ``app`` imports FastAPI.
"""

"""Alert rules, incidents and their delivery to Slack, a Slack webhook or the console.

:mod:`alerts.signals` turns statistics into evaluations, :mod:`alerts.incidents` and
:mod:`alerts.manager` fold them into incidents and queue messages in the outbox,
:mod:`alerts.render` writes the messages, :mod:`alerts.dispatch` delivers them through a
:mod:`alerts.sinks` sink exactly once, and :mod:`alerts.health` says what keeps them
from arriving (``driftd check``, ``driftd alerts test``).
"""

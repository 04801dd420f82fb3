"""Champion and challenger on live traffic: the A/B analysis (pure statistics).

- :mod:`monitor.ab.srm`: the sample ratio check, first, every cycle;
- :mod:`monitor.ab.sequential`: the always-valid confidence sequence for a difference
  of means (valid when looked at every cycle);
- :mod:`monitor.ab.metrics`: the per-row values behind each A/B metric;
- :mod:`monitor.ab.analysis`: the checks in order and the decision (promote, roll
  back, continue, or stop on a broken split).

The shadow comparison (the challenger scored on the champion's own rows) is
:mod:`monitor.shadow`. Nothing here does I/O or reads a clock.
"""

"""Alert rules, incidents and delivery (Slack, console). Not implemented yet (issue 5);
the tables it will use (incidents, alert_outbox, silences) exist in :mod:`storage`."""

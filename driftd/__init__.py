"""driftd's shell: configuration, command line, daemon wiring and the demo."""

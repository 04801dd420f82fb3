"""Demo domain: seeded card transactions with a fraud label and a drifting production stream."""

"""Usage records, their daily roll-ups, and model prices."""

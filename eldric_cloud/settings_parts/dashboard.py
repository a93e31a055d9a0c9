"""The live dashboard (/dashboard)."""

import environ

env = environ.Env()

# How often an open dashboard receives a fresh state over its websocket.
ELDRIC_DASHBOARD_PUSH_SECONDS = env.float("ELDRIC_DASHBOARD_PUSH_SECONDS", default=2.0)
# The model catalogue (possibly thousands of rows) is re-sent when it changes, and at least this often.
ELDRIC_DASHBOARD_MODELS_EVERY_SECONDS = env.float("ELDRIC_DASHBOARD_MODELS_EVERY_SECONDS", default=60.0)
# The routing-decisions panel: how many finished requests each process keeps in memory (newest win).
ELDRIC_DASHBOARD_DECISIONS = env.int("ELDRIC_DASHBOARD_DECISIONS", default=100)
# Tokens and cost per organisation and key (the costliest part of a state to read) are re-read at most this often.
ELDRIC_DASHBOARD_USAGE_EVERY_SECONDS = env.float("ELDRIC_DASHBOARD_USAGE_EVERY_SECONDS", default=30.0)

"""The live dashboard (/dashboard)."""

import environ

env = environ.Env()

# How often an open dashboard receives a fresh state over its websocket.
ELDRIC_DASHBOARD_PUSH_SECONDS = env.float("ELDRIC_DASHBOARD_PUSH_SECONDS", default=2.0)
# The model catalogue (possibly thousands of rows) is re-sent when it changes, and at least this often.
ELDRIC_DASHBOARD_MODELS_EVERY_SECONDS = env.float("ELDRIC_DASHBOARD_MODELS_EVERY_SECONDS", default=60.0)

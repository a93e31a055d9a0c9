"""Settings for controller registration; star-imported by eldric_cloud.settings.

The heartbeat interval is ``ELDRIC_HEARTBEAT_SECONDS`` (settings_parts/licenses.py): the
database heartbeat and the controller heartbeat keep the same 30 s rhythm.
"""

import environ

env = environ.Env()

# The controller's base URL when neither --controller nor the config file's controller_url gives one.
ELDRIC_CONTROLLER = env.str("ELDRIC_CONTROLLER", default="")
# Sent as X-Eldric-Cluster-Secret on every controller call when set; the stub requires it when set.
ELDRIC_CLUSTER_SECRET = env.str("ELDRIC_CLUSTER_SECRET", default="")
# Where the controller keeps workers: PUT/DELETE {path}/{worker_id}, GET {path}.
ELDRIC_CONTROLLER_WORKERS_PATH = env.str("ELDRIC_CONTROLLER_WORKERS_PATH", default="/api/v1/workers")
# Per call: connecting, and the whole exchange (seconds). A slower controller counts as down.
ELDRIC_CONTROLLER_CONNECT_TIMEOUT_SECONDS = env.float("ELDRIC_CONTROLLER_CONNECT_TIMEOUT_SECONDS", default=2.0)
ELDRIC_CONTROLLER_TIMEOUT_SECONDS = env.float("ELDRIC_CONTROLLER_TIMEOUT_SECONDS", default=5.0)
# Back-off after failures: the first wait, doubling per failure up to the cap, jittered (seconds).
ELDRIC_CONTROLLER_BACKOFF_INITIAL_SECONDS = env.float("ELDRIC_CONTROLLER_BACKOFF_INITIAL_SECONDS", default=1.0)
ELDRIC_CONTROLLER_BACKOFF_MAX_SECONDS = env.float("ELDRIC_CONTROLLER_BACKOFF_MAX_SECONDS", default=300.0)
# How long a graceful shutdown waits for the controller to take the deregistration (seconds).
ELDRIC_CONTROLLER_DEREGISTER_TIMEOUT_SECONDS = env.float("ELDRIC_CONTROLLER_DEREGISTER_TIMEOUT_SECONDS", default=2.0)
# The URL the controller and router should use for this instance; by default the listen
# address, or the host name when listening on 0.0.0.0 / ::.
ELDRIC_ADVERTISE_URL = env.str("ELDRIC_ADVERTISE_URL", default="")

"""Settings for licenses; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

# Base64 Ed25519 public keys whose signatures this deployment trusts, comma-separated: keep
# the old key listed while licenses signed with it are still in use, so keys can rotate.
ELDRIC_LICENSE_PUBLIC_KEYS = env.list("ELDRIC_LICENSE_PUBLIC_KEYS", default=[])
# A license file installed at every start (as `eldric-cloudd --license FILE`).
ELDRIC_LICENSE_FILE = env.str("ELDRIC_LICENSE_FILE", default="")
# After its expiry date a license keeps its tier this long, with a daily warning.
ELDRIC_LICENSE_GRACE_DAYS = env.int("ELDRIC_LICENSE_GRACE_DAYS", default=14)
# Instance heartbeat: how often each instance says it is alive, and how long after its last
# beat it still counts against the license's cloud-worker limit.
ELDRIC_HEARTBEAT_SECONDS = env.float("ELDRIC_HEARTBEAT_SECONDS", default=30.0)
ELDRIC_INSTANCE_LIVE_SECONDS = env.float("ELDRIC_INSTANCE_LIVE_SECONDS", default=90.0)

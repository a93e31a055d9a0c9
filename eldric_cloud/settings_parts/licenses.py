"""Settings for licenses; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

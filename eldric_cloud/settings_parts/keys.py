"""Settings for keys; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

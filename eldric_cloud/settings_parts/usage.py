"""Settings for usage; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

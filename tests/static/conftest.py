from tests.server.conftest import data_dir, migrated_template  # noqa: F401 - fixtures shared with tests/server

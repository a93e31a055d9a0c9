"""Migration 0006: an installation from before instances had their own configuration."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("backends", "0005_backend_organisation"), ("orgs", "0002_default_organisation")]
AFTER = [("backends", "0006_instances_per_instance_config")]


@pytest.mark.django_db(transaction=True)
def test_static_backends_go_to_the_default_instance_and_settings_to_every_instance():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    old.get_model("backends", "GatewaySettings").objects.update_or_create(
        pk=1, defaults={"default_backend": "a", "health_interval_ms": 5000, "controller_url": "http://ctl:8880"}
    )
    old.get_model("backends", "WorkerIdentity").objects.create(instance="default", worker_id="cld-00000001")
    Backend = old.get_model("backends", "Backend")
    Backend.objects.create(name="a", url="http://127.0.0.1:9/v1", source="static")
    Backend.objects.create(name="rt", url="http://127.0.0.1:9/v1", source="api")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state(AFTER).apps

    instances = dict(new.get_model("backends", "Backend").objects.values_list("name", "instances"))
    assert instances == {"a": ["default"], "rt": []}
    identity = new.get_model("backends", "WorkerIdentity").objects.get(instance="default")
    assert (identity.default_backend, identity.health_interval_ms, identity.controller_url) == (
        "a",
        5000,
        "http://ctl:8880",
    )
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

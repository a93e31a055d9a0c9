"""Per-organisation routing views: what each organisation may reach, built once per shape."""

from __future__ import annotations

from backends.snapshot import BackendRoute, snapshot_assemble


def _route(name: str, organisation: str = "default", priority: int = 1) -> BackendRoute:
    return BackendRoute(
        name=name,
        kind="openai_compatible",
        url=f"http://{name}.test/v1",
        api_key="k",
        priority=priority,
        health="healthy",
        organisation=organisation,
    )


def test_organisations_that_see_the_same_backends_share_one_view():
    routes = [_route("shared-a"), _route("shared-b", priority=2), _route("acme-own", organisation="acme")]
    models = {"shared-a": [("m", 1)], "shared-b": [("m", 1)], "acme-own": [("acme-model", 2)]}
    orgs = {f"tenant-{i}": True for i in range(50)} | {"acme": True, "solo": False}

    snapshot = snapshot_assemble(
        version=1, worker_id="cld-t", routes=routes, models=models, default_backend="shared-a", organisations=orgs
    )

    tenants = {id(snapshot.views[f"tenant-{i}"]) for i in range(50)}
    assert len(tenants) == 1  # fifty organisations, one view
    tenant = snapshot.views["tenant-0"]
    assert [r.name for r in tenant.model_routes["m"]] == ["shared-a", "shared-b"]
    assert "acme-model" not in tenant.model_routes and tenant.default_backend == "shared-a"
    assert snapshot.views["default"] is tenant  # the default organisation sees the same backends
    acme = snapshot.views["acme"]
    assert set(acme.model_routes) == {"m", "acme-model"} and acme.default_backend == "shared-a"
    solo = snapshot.views["solo"]
    assert solo.model_routes == {} and solo.default_backend == ""  # shares nothing, owns nothing


def test_a_view_over_every_backend_is_the_snapshot_itself():
    routes = [_route("a"), _route("b")]
    snapshot = snapshot_assemble(
        version=1,
        worker_id="cld-t",
        routes=routes,
        models={"a": [("m", 1)]},
        default_backend="a",
        organisations={"tenant": True},
    )
    assert snapshot.views["tenant"].model_routes == snapshot.model_routes
    assert snapshot.views["tenant"].models_body == snapshot.models_body

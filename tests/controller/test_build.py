"""The client as eldric-cloudd builds it: from settings, over the real in-process gateway."""

from __future__ import annotations

from eldric_cloud.controller.build import controller_client_build
from tests.conftest import route_for
from tests.controller.conftest import eventually


async def test_settings_give_the_url_secret_path_and_advertised_address(settings, gateway, fake_provider, stub):
    server = await stub(secret="built-s3cret", workers_path="/cluster/workers")
    settings.ELDRIC_CONTROLLER = server.url
    settings.ELDRIC_CLUSTER_SECRET = "built-s3cret"
    settings.ELDRIC_CONTROLLER_WORKERS_PATH = "/cluster/workers"
    settings.ELDRIC_ADVERTISE_URL = "http://gw-7.internal:8889"
    settings.ELDRIC_HEARTBEAT_SECONDS = 0.1
    settings.ELDRIC_INSTANCE = "eu-west-7"
    gateway.route((route_for(fake_provider("openai")), ["gpt-4o"]), worker_id="cld-7777aaaa")

    client = controller_client_build(gateway.gateway, controller_url="", bind_host="0.0.0.0", port=8889)
    client.start()
    try:
        worker = await eventually(
            lambda: (w := server.registry.get("cld-7777aaaa")) and w["heartbeats"] >= 2 and w, what="2 beats"
        )
    finally:
        await client.aclose()

    assert (worker["url"], worker["host"], worker["port"]) == ("http://gw-7.internal:8889", "gw-7.internal", 8889)
    assert worker["instance"] == "eu-west-7"
    assert worker["version"] == "0.1.0"
    assert worker["models"] == ["gpt-4o"]
    assert server.registry.get("cld-7777aaaa")["status"] == "deregistered"


async def test_the_flag_wins_over_the_environment_and_none_means_disabled(settings, gateway):
    settings.ELDRIC_CONTROLLER = "http://from-env:8880"

    flagged = controller_client_build(gateway.gateway, controller_url="http://flag:8880", bind_host="h", port=1)
    settings.ELDRIC_CONTROLLER = ""
    disabled = controller_client_build(gateway.gateway, controller_url="", bind_host="h", port=1)
    disabled.start()

    assert flagged.controller_health()["url"] == "http://flag:8880"
    assert disabled.controller_health() == {"configured": False, "state": "disabled"}
    await disabled.aclose()

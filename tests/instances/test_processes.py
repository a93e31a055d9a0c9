"""Several real ``eldric-cloudd`` instances on one PostgreSQL database, each with its own
``--backends`` or config file (issue 12, "Per-instance configuration")."""

from __future__ import annotations

import openai
import pytest

from tests.cli_process import run_cli, write_config
from tests.fakes import recordings
from tests.fakes.server import free_port, openai_models, reply_bytes
from tests.instances.conftest import ADMIN_TOKEN

USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def serving(fake, *models: str):
    fake.on("GET", "/v1/models", openai_models(*models))
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    return fake


def sdk(instance) -> openai.OpenAI:
    return openai.OpenAI(base_url=instance.url + "/v1", api_key="client-key", max_retries=0, timeout=30)


def model_ids(instance) -> set[str]:
    with sdk(instance) as client:
        return {m.id for m in client.models.list()}


def answered_by(instance, model: str) -> str:
    """The backend that answered a chat request for ``model`` through ``instance``."""
    with sdk(instance) as client:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=USER)
    assert raw.parse().choices[0].message.content
    return raw.headers["x-eldric-backend"]


def backends_by_name(instance) -> dict[str, dict]:
    response = instance.get("/api/v1/backends", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {b["name"]: b for b in response.json()["data"]}


@pytest.fixture
def runtime_backends():
    """Runtime backends are shared by the module's instances: each test deletes its own.
    Requested after ``instances``, so this runs while they still serve."""
    created: list[tuple[object, str]] = []
    yield created
    for instance, name in created:
        instance.client().delete(f"/api/v1/backends/{name}", headers=ADMIN)


def test_two_instances_with_different_backends_keep_each_others_and_serve_their_own(instances, fake_provider):
    alpha = serving(fake_provider("alpha"), "m-alpha")
    bravo = serving(fake_provider("bravo"), "m-bravo")

    one = instances("t1-one", "--backends", f"t1-alpha:{alpha.url}/v1")
    two = instances("t1-two", "--backends", f"t1-bravo:{bravo.url}/v1")

    # Instance two's start-up did not delete instance one's backend.
    listed = backends_by_name(two)
    assert listed["t1-alpha"]["instances"] == ["t1-one"]
    assert listed["t1-bravo"]["instances"] == ["t1-two"]
    # Each serves its own catalogue, through the official SDK.
    one.wait_for(lambda: model_ids(one) == {"m-alpha"}, "instance one's catalogue")
    assert model_ids(two) == {"m-bravo"}
    assert answered_by(one, "m-alpha") == "t1-alpha"
    assert answered_by(two, "m-bravo") == "t1-bravo"
    # Each keeps its own default backend: a model neither lists goes to the instance's own.
    assert answered_by(one, "my-custom-model") == "t1-alpha"
    assert answered_by(two, "my-custom-model") == "t1-bravo"
    assert all(r.json()["model"] in ("m-alpha", "my-custom-model") for r in alpha.requests_to("/v1/chat/completions"))
    assert all(r.json()["model"] in ("m-bravo", "my-custom-model") for r in bravo.requests_to("/v1/chat/completions"))

    # A restart of instance one with the same flags leaves instance two's backend alone too.
    one.stop()
    one = instances("t1-one", "--backends", f"t1-alpha:{alpha.url}/v1")
    assert set(backends_by_name(one)) >= {"t1-alpha", "t1-bravo"}
    assert model_ids(two) == {"m-bravo"}


def test_a_sighup_reload_of_one_instance_leaves_the_others_alone(instances, fake_provider, tmp_path):
    alpha = serving(fake_provider("alpha"), "m-alpha")
    charlie = serving(fake_provider("charlie"), "m-charlie")
    bravo = serving(fake_provider("bravo"), "m-bravo")
    config = tmp_path / "one.json"
    write_config(config, {"backends": [{"name": "t2-alpha", "url": alpha.url + "/v1"}]})
    one = instances("t2-one", config=config)
    two = instances("t2-two", "--backends", f"t2-bravo:{bravo.url}/v1")
    assert model_ids(one) == {"m-alpha"}

    # Instance one's file now drops alpha for charlie and sets a default; SIGHUP applies it.
    mark = len(one.logs())
    write_config(
        config,
        {
            "default_backend": "t2-charlie",
            "health_check_interval_ms": 7000,
            "backends": [{"name": "t2-charlie", "url": charlie.url + "/v1"}],
        },
    )
    one.sighup()
    one.wait_for_log("config reload (SIGHUP)", after=mark)
    one.wait_for(lambda: model_ids(one) == {"m-charlie"}, "instance one's new catalogue")

    listed = backends_by_name(two)
    assert "t2-alpha" not in listed  # instance one's own backend, dropped by its own file
    assert listed["t2-bravo"]["instances"] == ["t2-two"]
    assert model_ids(two) == {"m-bravo"}
    assert answered_by(two, "my-custom-model") == "t2-bravo"  # its default did not move
    assert answered_by(one, "my-custom-model") == "t2-charlie"


def test_a_runtime_backend_pinned_to_one_instance_routes_only_there(instances, runtime_backends, fake_provider):
    alpha = serving(fake_provider("alpha"), "m-alpha")
    bravo = serving(fake_provider("bravo"), "m-bravo")
    pinned = serving(fake_provider("pinned"), "m-pinned")
    everywhere = serving(fake_provider("everywhere"), "m-everywhere")
    one = instances("t3-one", "--backends", f"t3-alpha:{alpha.url}/v1")
    two = instances("t3-two", "--backends", f"t3-bravo:{bravo.url}/v1")

    for name, fake, pins in (("t3-pinned", pinned, ["t3-one"]), ("t3-everywhere", everywhere, [])):
        body = {"name": name, "type": "openai_compatible", "url": fake.url + "/v1", "instances": pins}
        created = two.post("/api/v1/backends", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
        runtime_backends.append((two, name))
        assert created.json()["instances"] == pins

    one.wait_for(lambda: model_ids(one) == {"m-alpha", "m-pinned", "m-everywhere"}, "instance one's catalogue")
    two.wait_for(lambda: model_ids(two) == {"m-bravo", "m-everywhere"}, "instance two's catalogue")
    assert answered_by(one, "m-pinned") == "t3-pinned"
    assert answered_by(one, "m-everywhere") == "t3-everywhere"
    assert answered_by(two, "m-everywhere") == "t3-everywhere"
    # Through instance two the pinned backend does not exist: its model is unknown there and
    # goes to instance two's own default backend.
    assert answered_by(two, "m-pinned") == "t3-bravo"
    assert len(pinned.requests_to("/v1/chat/completions")) == 1

    # Unpinning makes it routable through both within the snapshot poll.
    assert two.client().patch("/api/v1/backends/t3-pinned", json={"instances": []}, headers=ADMIN).status_code == 200
    two.wait_for(lambda: "m-pinned" in model_ids(two), "the unpinned backend on instance two")
    assert answered_by(two, "m-pinned") == "t3-pinned"


def test_the_same_name_with_another_url_stops_the_second_instance_with_status_2(instances, shared_env, fake_provider):
    alpha = serving(fake_provider("alpha"), "m-alpha")
    other = serving(fake_provider("other"), "m-other")
    one = instances("t4-one", "--backends", f"t4-shared:{alpha.url}/v1")

    clash = run_cli(
        "--backends",
        f"t4-shared:{other.url}/v1",
        "--no-worker",
        "--port",
        str(free_port()),
        env={**shared_env, "ELDRIC_INSTANCE": "t4-two"},
    )

    assert clash.returncode == 2, clash.stderr
    assert "'t4-shared'" in clash.stderr and "t4-one" in clash.stderr
    assert f"{other.url}/v1" in clash.stderr
    assert backends_by_name(one)["t4-shared"]["instances"] == ["t4-one"]
    assert model_ids(one) == {"m-alpha"}


def test_the_same_name_url_and_type_is_shared_until_its_last_instance_drops_it(instances, fake_provider):
    alpha = serving(fake_provider("alpha"), "m-alpha")
    bravo = serving(fake_provider("bravo"), "m-bravo")
    one = instances("t5-one", "--backends", f"t5-shared:{alpha.url}/v1")
    three = instances("t5-three", "--backends", f"t5-shared:{alpha.url}/v1")
    assert backends_by_name(one)["t5-shared"]["instances"] == ["t5-one", "t5-three"]
    assert model_ids(three) == {"m-alpha"}

    # Instance three comes back with other backends: instance one still has the shared one.
    three.stop()
    three = instances("t5-three", "--backends", f"t5-bravo:{bravo.url}/v1")
    assert backends_by_name(one)["t5-shared"]["instances"] == ["t5-one"]
    assert model_ids(one) == {"m-alpha"}
    assert model_ids(three) == {"m-bravo"}


def test_the_health_of_every_instance_counts_only_its_own_backends(instances, fake_provider):
    alpha = serving(fake_provider("alpha"), "m-alpha")
    bravo = serving(fake_provider("bravo"), "m-bravo")
    one = instances("t6-one", "--backends", f"t6-alpha:{alpha.url}/v1")
    two = instances("t6-two", "--backends", f"t6-bravo:{bravo.url}/v1")

    assert one.get("/health").json()["backends"]["total"] == 1
    assert two.get("/health").json()["backends"]["total"] == 1
    assert one.get("/health").json().get("worker_id") != two.get("/health").json().get("worker_id")


def test_instances_starting_together_with_a_shared_backend_all_start_and_share_it(instances, fake_provider):
    from concurrent.futures import ThreadPoolExecutor

    alpha = serving(fake_provider("alpha"), "m-alpha")
    names = [f"t7-{i}" for i in range(3)]

    with ThreadPoolExecutor(len(names)) as pool:
        started = list(pool.map(lambda name: instances(name, "--backends", f"t7-shared:{alpha.url}/v1"), names))

    assert backends_by_name(started[0])["t7-shared"]["instances"] == names
    assert all(model_ids(instance) == {"m-alpha"} for instance in started)

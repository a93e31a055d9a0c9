"""/v1 with client keys, through the real in-process gateway: no database on the hot path
(pytest-django blocks it in every thread here)."""

from __future__ import annotations

import time

import openai
import pytest

from tests.keys.conftest import MODEL, USER, chat

MASTER_KEY = "mk-test-master-0123456789"


def test_a_client_key_works_as_bearer_and_as_x_api_key(routed, keys):
    key = keys.add()
    with routed.client() as client:
        assert chat(client, key).status_code == 200
        body = {"model": MODEL, "messages": USER}
        assert client.post("/v1/chat/completions", json=body, headers={"x-api-key": key}).status_code == 200
    principals = [ctx.principal for ctx in routed.recorder.wait_for(2)]
    record = next(iter(keys.keys.values()))
    assert {(p.kind, p.organisation, p.key_id, p.name) for p in principals} == {
        ("client_key", "default", str(record.id), record.name)
    }


def test_the_openai_sdk_authenticates_with_a_client_key(routed, keys):
    sdk = openai.OpenAI(base_url=routed.url + "/v1", api_key=keys.add(), max_retries=0)
    assert sdk.chat.completions.create(model=MODEL, messages=USER).choices[0].message.content == "hello"


@pytest.mark.parametrize("require", [False, True], ids=["open", "required"])
def test_an_unknown_or_revoked_eld_key_is_401_even_when_v1_is_open(routed, keys, require):
    routed.configure(require_client_key=require)
    key = keys.add()
    keys.revoke(key)
    with routed.client() as client:
        for sent in (key, "eld-" + "x" * 40):
            response = chat(client, sent)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_api_key"
            assert sent not in response.text


def test_open_mode_still_accepts_no_key_or_any_other_key(routed):
    with routed.client() as client:
        assert chat(client, None).status_code == 200
        assert chat(client, "sk-anything").status_code == 200


def test_require_client_key_closes_v1_without_a_key(routed, keys):
    routed.configure(require_client_key=True)
    with routed.client() as client:
        missing = chat(client, None)
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "missing_api_key"
        assert chat(client, "sk-anything").json()["error"]["code"] == "invalid_api_key"
        assert client.get("/v1/models").status_code == 401
        assert chat(client, keys.add()).status_code == 200
        assert client.get("/health").status_code == 200


def test_an_expired_key_is_401(routed, keys):
    expired = keys.add(expires_at=time.time() - 1)
    fresh = keys.add(expires_at=time.time() + 3600)
    with routed.client() as client:
        response = chat(client, expired)
        assert response.status_code == 401
        assert response.json()["error"] == {
            "message": "This API key has expired.",
            "type": "authentication_error",
            "param": None,
            "code": "expired_api_key",
        }
        assert chat(client, fresh).status_code == 200


def test_a_model_outside_the_keys_globs_is_403_and_not_listed(routed, keys):
    key = keys.add(models=["gpt-4o*"])
    sdk = openai.OpenAI(base_url=routed.url + "/v1", api_key=key, max_retries=0)
    assert sdk.chat.completions.create(model="gpt-4o-mini", messages=USER).choices
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.chat.completions.create(model="o3", messages=USER)
    assert refused.value.status_code == 403
    assert refused.value.code == "model_not_allowed"
    assert sorted(m.id for m in sdk.models.list()) == ["gpt-4o", "gpt-4o-mini"]
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("o3")
    assert sdk.models.retrieve("gpt-4o").id == "gpt-4o"
    # A key without globs sees every model.
    everything = openai.OpenAI(base_url=routed.url + "/v1", api_key=keys.add(), max_retries=0)
    assert sorted(m.id for m in everything.models.list()) == ["gpt-4o", "gpt-4o-mini", "o3"]


def test_the_master_key_still_works_beside_client_keys(routed, keys):
    routed.configure(master_key=MASTER_KEY)
    key = keys.add()
    with routed.client() as client:
        assert chat(client, MASTER_KEY).status_code == 200
        assert chat(client, key).status_code == 200
        assert chat(client, None).json()["error"]["code"] == "missing_api_key"
        assert chat(client, "sk-wrong").json()["error"]["code"] == "invalid_api_key"
    finished = routed.recorder.wait_for(4)
    assert finished[0].principal.kind == "master"
    assert finished[0].principal.organisation == "default"
    assert finished[1].principal.kind == "client_key"


def test_a_key_in_another_organisation_routes_with_that_organisation(routed, keys):
    keys.organisation("acme")
    key = keys.add(organisation="acme")
    with routed.client() as client:
        assert chat(client, key).status_code == 200
    assert routed.recorder.wait_for(1)[0].principal.organisation == "acme"

"""Client keys through the management API, the management commands and the admin."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from orgs.keys import key_records_get
from orgs.models import ClientKey, Organisation
from orgs.selectors import access_version_get

pytestmark = pytest.mark.django_db(transaction=True)
KEY = re.compile(r"^eld-[A-Za-z0-9]{40}$")


def test_post_creates_a_key_shown_once_and_stores_only_its_hash(api):
    version = access_version_get()
    response = api.post(
        "/api/v1/keys",
        {
            "name": "ci",
            "models": ["gpt-4o*"],
            "rpm": 60,
            "tpm": 10000,
            "max_concurrent": 4,
            "budget_usd": "12.5",
            "budget_period": "day",
            "expires_at": "2030-01-01T00:00:00Z",
        },
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    key = body["key"]
    assert KEY.match(key)
    assert body["prefix"] == f"{key[:12]}…"
    assert body["organisation"] == "default"
    assert body["models"] == ["gpt-4o*"]
    assert (body["rpm"], body["tpm"], body["max_concurrent"]) == (60, 10000, 4)
    assert body["budget_usd"] == 12.5
    assert body["budget_period"] == "day"
    assert body["expires_at"] == "2030-01-01T00:00:00Z"
    assert body["status"] == "active"
    row = ClientKey.objects.get(pk=body["id"])
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[4:12]
    assert key not in repr(ClientKey.objects.values().get(pk=row.pk))
    assert access_version_get() > version
    record = key_records_get()[row.key_hash]
    assert (record.id, record.organisation, record.models, record.limits.rpm) == (row.id, "default", ("gpt-4o*",), 60)

    listing = api.get("/api/v1/keys").json()
    detail = api.get(f"/api/v1/keys/{row.id}").json()
    assert key not in str(listing) and key not in str(detail)
    assert [k["id"] for k in listing["data"]] == [row.id]
    assert "key" not in detail


def test_patch_changes_limits_and_delete_revokes(api):
    created = api.post("/api/v1/keys", {"name": "app"}).json()
    digest = hashlib.sha256(created["key"].encode()).hexdigest()
    version = access_version_get()

    patched = api.patch(f"/api/v1/keys/{created['id']}", {"rpm": 5, "models": ["o3"], "name": "app2"})
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["rpm"], patched.json()["models"], patched.json()["name"]) == (5, ["o3"], "app2")
    assert key_records_get()[digest].limits.rpm == 5
    assert access_version_get() > version

    disabled = api.patch(f"/api/v1/keys/{created['id']}", {"enabled": False})
    assert disabled.json()["status"] == "disabled"
    assert digest not in key_records_get()
    api.patch(f"/api/v1/keys/{created['id']}", {"enabled": True})
    assert digest in key_records_get()

    revoked = api.delete(f"/api/v1/keys/{created['id']}")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_at"]
    assert digest not in key_records_get()
    # A revoked key stays revoked.
    again = api.patch(f"/api/v1/keys/{created['id']}", {"enabled": True})
    assert again.status_code == 400
    assert digest not in key_records_get()


def test_a_key_belongs_to_an_existing_organisation(api):
    Organisation.objects.create(slug="acme", name="Acme")
    assert api.post("/api/v1/keys", {"name": "a", "organisation": "acme"}).json()["organisation"] == "acme"
    missing = api.post("/api/v1/keys", {"name": "a", "organisation": "nope"})
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "organisation"
    only_acme = api.get("/api/v1/keys?organisation=acme").json()["data"]
    assert [k["organisation"] for k in only_acme] == ["acme"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "rpm": 0}, "rpm"),
        ({"name": "x", "rpm": "many"}, "rpm"),
        ({"name": "x", "tpm": -1}, "tpm"),
        ({"name": "x", "max_concurrent": 1.5}, "max_concurrent"),
        ({"name": "x", "budget_usd": -1}, "budget_usd"),
        ({"name": "x", "budget_usd": "NaN"}, "budget_usd"),
        ({"name": "x", "budget_period": "week"}, "budget_period"),
        ({"name": "x", "models": "gpt-4o"}, "models"),
        ({"name": "x", "models": [1]}, "models"),
        ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "x", "key": "eld-mine"}, "key"),
    ],
)
def test_invalid_bodies_are_400_in_the_openai_shape(api, body, param):
    response = api.post("/api/v1/keys", body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_value"
    assert ClientKey.objects.count() == 0


def test_unknown_ids_are_404_and_the_api_needs_the_admin_token(api, client):
    assert api.get("/api/v1/keys/999").status_code == 404
    assert api.get("/api/v1/keys/abc").status_code == 404
    assert api.delete("/api/v1/keys/999").status_code == 404
    assert client.get("/api/v1/keys").status_code == 401
    assert client.post("/api/v1/keys", {"name": "x"}, content_type="application/json").status_code == 401


def test_key_create_command_prints_the_key_once(transactional_db):
    out = io.StringIO()
    call_command("key_create", "--name", "cli", "--rpm", "10", "--models", "gpt-4o*,o3", stdout=out)
    key = re.search(r"eld-[A-Za-z0-9]{40}", out.getvalue()).group(0)
    row = ClientKey.objects.get(key_hash=hashlib.sha256(key.encode()).hexdigest())
    assert (row.name, row.rpm, row.allowed_models) == ("cli", 10, ["gpt-4o*", "o3"])
    out = io.StringIO()
    call_command("key_revoke", str(row.id), stdout=out)
    row.refresh_from_db()
    assert row.revoked_at is not None
    with pytest.raises(CommandError):
        call_command("key_create", "--name", "x", "--organisation", "nope", stdout=io.StringIO())


def test_the_admin_shows_a_new_key_once_and_revokes(admin_client):
    response = admin_client.post(
        "/admin/orgs/clientkey/add/",
        {
            "organisation": Organisation.objects.get(slug="default").pk,
            "name": "from-admin",
            "allowed_models": "[]",
            "budget_period": "month",
            "enabled": "on",
        },
    )
    # The key is on the answer to the creation itself, which no cache may keep, and in no
    # cookie: a message would carry it, signed but readable, to the next page.
    assert response.status_code == 200
    shown = re.findall(r"eld-[A-Za-z0-9]{40}", response.content.decode())
    assert len(set(shown)) == 1
    assert "no-store" in response.headers["Cache-Control"]
    assert all(shown[0] not in morsel.value for morsel in response.cookies.values())
    assert shown[0] not in admin_client.get("/admin/orgs/clientkey/").content.decode()
    row = ClientKey.objects.get(name="from-admin")
    assert row.key_hash == hashlib.sha256(shown[0].encode()).hexdigest()
    page = admin_client.get(f"/admin/orgs/clientkey/{row.pk}/change/").content.decode()
    assert shown[0] not in page
    assert f"eld-{row.prefix}…" in page
    admin_client.post("/admin/orgs/clientkey/", {"action": "revoke_keys", "_selected_action": [row.pk]}, follow=True)
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert row.key_hash not in key_records_get()


@pytest.mark.django_db
def test_the_access_snapshot_holds_each_usable_key_as_stored():
    import datetime

    from orgs.access import LimitSpec
    from orgs.keys import key_create, key_hash, key_revoke

    expiry = datetime.datetime(2030, 1, 2, tzinfo=datetime.UTC)
    limited = key_create(name="a", models=["gpt-4o*", "claude-*"], rpm=60, budget_usd=2.5, budget_period="day")
    twin = key_create(name="b", models=["gpt-4o*", "claude-*"], rpm=60, budget_usd=2.5, budget_period="day")
    plain = key_create(name="c", expires_at=expiry)
    gone = key_create(name="d")
    key_revoke(gone.record)

    records = key_records_get()

    assert key_hash(gone.key) not in records
    first, second, third = (records[key_hash(k.key)] for k in (limited, twin, plain))
    assert first.models == ("gpt-4o*", "claude-*") and first.organisation == "default"
    assert first.limits == LimitSpec(rpm=60, budget_usd=2.5, budget_period="day")
    assert first.limits is second.limits and first.models is second.models  # equal values, one object
    assert third.models == () and third.limits == LimitSpec() and third.expires_at == expiry.timestamp()
    assert third.prefix == plain.record.prefix and third.name == "c" and third.id == plain.record.id

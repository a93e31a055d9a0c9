"""Signed license documents: what verifies and what is rejected."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orgs.license_files import (
    LicenseInvalid,
    license_sign,
    license_verify,
    public_key_b64,
    public_keys_parse,
)
from tests.licenses.support import tampered


def keys_for(*public: str):
    return public_keys_parse(list(public))


def test_a_signed_license_verifies_and_carries_its_payload(license_key):
    document = license_key.issue(organisation="acme", tier="professional", days=30, overrides={"backends": 40})

    payload = license_verify(document, keys_for(license_key.public))

    assert (payload.organisation, payload.tier, payload.overrides) == ("acme", "professional", {"backends": 40})
    assert (payload.expires_at - payload.issued_at).days == 30
    assert payload.license_id.startswith("lic-")


def test_it_survives_copy_and_paste_reformatting(license_key):
    document = json.loads(license_key.issue())
    # Re-indented, keys re-ordered, as an editor or a secret store might.
    pasted = json.dumps({"signature": document["signature"], "payload": dict(reversed(document["payload"].items()))})

    assert license_verify(pasted, keys_for(license_key.public)).tier == "enterprise"


@pytest.mark.parametrize(
    "changes", [{"tier": "enterprise"}, {"expires_at": "2099-01-01T00:00:00Z"}, {"organisation": "other"}]
)
def test_a_tampered_payload_is_rejected(license_key, changes):
    document = license_key.issue(tier="standard", days=10)

    with pytest.raises(LicenseInvalid, match="does not verify"):
        license_verify(tampered(document, **changes), keys_for(license_key.public))


def test_a_license_signed_with_another_key_is_rejected(license_key):
    stranger = Ed25519PrivateKey.generate()
    document = license_sign(stranger, organisation="default", tier="enterprise", days=10)

    with pytest.raises(LicenseInvalid, match="does not verify"):
        license_verify(document, keys_for(license_key.public))


def test_a_bad_signature_is_rejected(license_key):
    document = json.loads(license_key.issue())
    signature = bytearray(base64.b64decode(document["signature"]))
    signature[0] ^= 1
    flipped = {**document, "signature": base64.b64encode(bytes(signature)).decode()}

    with pytest.raises(LicenseInvalid, match="does not verify"):
        license_verify(flipped, keys_for(license_key.public))
    with pytest.raises(LicenseInvalid, match="not base64"):
        license_verify({**document, "signature": "!!not base64!!"}, keys_for(license_key.public))


def test_keys_rotate_any_listed_key_verifies(license_key):
    new = Ed25519PrivateKey.generate()
    document = license_sign(new, organisation="default", tier="standard", days=10)

    assert license_verify(document, keys_for(license_key.public, public_key_b64(new))).tier == "standard"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"payload": "x", "signature": "y"}', "payload object"),
        ("x" * 70_000, "too large"),
    ],
)
def test_what_is_not_a_license_file_says_why(license_key, text, message):
    with pytest.raises(LicenseInvalid, match=message):
        license_verify(text, keys_for(license_key.public))


def test_a_signed_payload_must_still_make_sense(license_key):
    # Signed by the trusted key, but naming a tier that does not exist.
    document = json.loads(license_key.issue())
    payload = {**document["payload"], "tier": "platinum"}
    from orgs.license_files import canonical_json

    signature = base64.b64encode(license_key.private.sign(canonical_json(payload))).decode()

    with pytest.raises(LicenseInvalid, match=r"payload\.tier"):
        license_verify({"payload": payload, "signature": signature}, keys_for(license_key.public))


def test_no_trusted_key_means_nothing_verifies(license_key):
    with pytest.raises(LicenseInvalid, match="ELDRIC_LICENSE_PUBLIC_KEYS"):
        license_verify(license_key.issue(), [])


def test_a_malformed_public_key_setting_is_named():
    with pytest.raises(LicenseInvalid, match="entry 2"):
        public_keys_parse([base64.b64encode(b"\0" * 32).decode(), "not-a-key"])

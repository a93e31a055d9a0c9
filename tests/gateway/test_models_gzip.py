"""``/v1/models`` gzipped for clients that accept it, when the catalogue is large: a 100k-model
catalogue is an 11 MB body, about 400 KB gzipped."""

from __future__ import annotations

import gzip
import json

import openai
import pytest

from gateway.asgi_io import accepts_gzip
from gateway.listing_bodies import ListingBodies
from tests.conftest import route_for
from tests.keys.conftest import Keys

MANY = [f"org-{number // 100:03d}/model-{number:05d}" for number in range(3000)]  # about 250 KB listed


@pytest.fixture
def big(gateway, fake_provider):
    gateway.route((route_for(fake_provider("openai")), MANY))
    return gateway


def raw_models(server, **headers) -> tuple[dict, bytes, int]:
    """The headers, the decoded body, and how many bytes crossed the wire."""
    with server.client() as client, client.stream("GET", "/v1/models", headers=headers) as response:
        assert response.status_code == 200
        body = response.read()
        return dict(response.headers), body, response.num_bytes_downloaded


def test_a_large_catalogue_is_sent_gzipped_to_a_client_that_accepts_it(big):
    headers, body, on_the_wire = raw_models(big, **{"accept-encoding": "gzip, deflate"})
    plain_headers, plain, plain_on_the_wire = raw_models(big, **{"accept-encoding": "identity"})

    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "accept-encoding"
    assert body == plain
    assert sorted(model["id"] for model in json.loads(body)["data"]) == sorted(MANY)
    assert on_the_wire < plain_on_the_wire / 5
    assert int(headers["content-length"]) == on_the_wire
    # A client that did not ask gets it as it is, and a cache keeps the two apart.
    assert "content-encoding" not in plain_headers
    assert plain_headers["vary"] == "accept-encoding"
    assert plain_on_the_wire == len(plain)


def test_the_openai_sdk_lists_a_gzipped_catalogue(big):
    sdk = openai.OpenAI(base_url=big.url + "/v1", api_key="sk-anything", max_retries=0)
    assert sorted(model.id for model in sdk.models.list()) == sorted(MANY)


def test_gzip_refused_with_q_0_is_not_sent(big):
    headers, body, on_the_wire = raw_models(big, **{"accept-encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in headers
    assert on_the_wire == len(body)


def test_a_keys_filtered_listing_is_gzipped_too(big):
    key = Keys(big).add(models=["org-00*"])
    headers, body, on_the_wire = raw_models(big, **{"authorization": f"Bearer {key}", "accept-encoding": "gzip"})
    listed = sorted(model["id"] for model in json.loads(body)["data"])
    assert listed == sorted(m for m in MANY if m.startswith("org-00"))
    assert headers["content-encoding"] == "gzip"
    assert on_the_wire < len(body) / 5


def test_a_small_catalogue_is_sent_as_it_is(gateway, fake_provider):
    gateway.route((route_for(fake_provider("openai")), ["gpt-4o", "o3"]))
    headers, body, on_the_wire = raw_models(gateway, **{"accept-encoding": "gzip"})
    assert "content-encoding" not in headers
    assert "vary" not in headers
    assert on_the_wire == len(body)


def test_gzip_is_off_with_the_setting_at_0(big):
    big.configure(gzip_min_bytes=0)
    headers, body, on_the_wire = raw_models(big, **{"accept-encoding": "gzip"})
    assert "content-encoding" not in headers
    assert on_the_wire == len(body)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (b"", False),
        (b"gzip", True),
        (b"deflate, gzip;q=0.5", True),
        (b"GZIP", True),
        (b"br", False),
        (b"gzip;q=0", False),
        (b"gzip;q=0.0, br", False),
        (b"*", True),
        (b"*;q=0", False),
        (b"*, gzip;q=0", False),
        (b"gzip;q=nonsense", False),
        (b"gzip;q=0.5;level=9", True),
        (b"gzip; level=9; q=0", False),
        (b"identity", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(value, expected):
    assert accepts_gzip(value) is expected


async def test_catalogues_replaced_one_after_another_are_not_all_held():
    # Discovery replaces the catalogue body; what was derived from the old ones must not pile up.
    listings = ListingBodies(gzip_min_bytes=1, max_bytes=2 * 1024 * 1024)
    catalogues = [
        json.dumps({"data": [{"id": f"v{version}-{n}"} for n in range(20_000)]}).encode() for version in range(8)
    ]

    for catalogue in catalogues:
        assert gzip.decompress(await listings.gzipped(catalogue)) == catalogue

    assert listings.held_bytes <= 2 * 1024 * 1024
    # The newest is still kept: asked again, it is the same object, not compressed anew.
    assert await listings.gzipped(catalogues[-1]) is await listings.gzipped(catalogues[-1])

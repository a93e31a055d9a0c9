"""The admin: prices are editable (and reload the gateways); usage per organisation and key
shows totals over the selection and flags unpriced requests."""

from __future__ import annotations

import pytest

from gateway.context import Usage
from tests.usage.conftest import finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_usage_per_day_shows_totals_over_the_selection_and_flags_unpriced(admin_client):
    from usage.rows import row_from_context
    from usage.services import usage_batch_write

    usage_batch_write(
        rows=[
            row_from_context(finished(model="gpt-a", usage=Usage(100, 10), cost=0.5), "t"),
            row_from_context(finished(model="odd", usage=Usage(7, 3), cost=None), "t"),
        ]
    )
    page = admin_client.get("/admin/usage/usageday/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "2 requests" in text and "107 input tokens" in text and "$0.5" in text
    assert "1 unpriced requests" in text

    only_priced = admin_client.get("/admin/usage/usageday/?unpriced=no").content.decode()
    assert "1 requests" in only_priced and "unpriced requests (no price" not in only_priced
    assert admin_client.get("/admin/usage/usagerecord/").status_code == 200


def test_a_price_saved_in_the_admin_moves_the_access_version(admin_client):
    from orgs.selectors import access_version_get
    from usage.models import ModelPrice

    before = access_version_get()
    answer = admin_client.post(
        "/admin/usage/modelprice/add/",
        {"provider": "", "model": "my-model", "input_per_million": "1.5", "output_per_million": "2"},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert ModelPrice.objects.get(model="my-model").input_per_million == 1.5
    assert access_version_get() == before + 1

"""Reads: one stored response, for ``previous_response_id``."""

from __future__ import annotations

from responses_store.models import StoredResponse


def stored_response_get(*, response_id: str, organisation: str) -> dict | None:
    """The stored response's history (input then output items), or None when there is no
    such response for this organisation (another organisation's answer is never found)."""
    row = (
        StoredResponse.objects.filter(response_id=response_id, organisation=organisation)
        .values("input_items", "output_items", "model")
        .first()
    )
    return row

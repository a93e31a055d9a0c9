"""What the dashboard's websocket and JSON endpoint send: the license gate, and the state
encoded once for every socket."""

from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder

from dashboard.selectors import dashboard_state
from orgs.license_gates import LicenseLimit, dashboard_check
from orgs.licenses import license_state_get
from traffic.decisions import DecisionRing


def dashboard_denial() -> LicenseLimit | None:
    """None when the installation's license (the default organisation's) includes the dashboard."""
    try:
        dashboard_check(license_state_get())
    except LicenseLimit as exc:
        return exc
    return None


def encode(payload: dict) -> str:
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))


def state_frame(
    *, previous_models_digest: str | None = None, decisions: DecisionRing | None = None, usage: dict | None = None
) -> tuple[str, str]:
    """(frame text, digest of its model catalogue). With ``previous_models_digest`` equal to
    the catalogue's, the frame carries ``"models": null`` (the page keeps what it has).
    ``decisions``: this process's routing-decisions ring, sent whole (it is bounded);
    ``usage``: fresh enough tokens-and-cost tables, if the caller keeps them."""
    state = dashboard_state(usage=usage)
    if decisions is not None:
        state["decisions"] = decisions.rows()
    digest = hashlib.sha256(encode(state["models"]).encode()).hexdigest()
    if digest == previous_models_digest:
        state["models"] = None
    return encode({"type": "state", "state": state}), digest

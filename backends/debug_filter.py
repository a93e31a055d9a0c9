"""Keeps decrypted upstream keys off Django's technical 500 page (``ELDRIC_DEBUG=1``).

Django's own filter hides settings by name, but shows every frame's locals as they are while
DEBUG is on; a BackendRoute, an UpstreamRequest's headers or a plain ``"Bearer sk-…"``
string would be printed whole. This filter masks them, in every frame, always.
"""

from __future__ import annotations

import dataclasses

from django.template.defaultfilters import pprint
from django.views.debug import SafeExceptionReporterFilter

from backends.providers.base import UpstreamRequest
from backends.redaction import redact
from backends.snapshot import BackendRoute

# How far up the stack to look for the keys an inner frame may hold in plain strings.
MAX_FRAMES = 200
MIN_SECRET_LENGTH = 8


class _Shown:
    """A frame variable replaced by its masked text (the page prints its repr)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class SecretMaskingReporterFilter(SafeExceptionReporterFilter):
    def sensitive(self, name) -> bool:
        return isinstance(name, str) and bool(self.hidden_settings.search(name))

    def get_traceback_frame_variables(self, request, tb_frame):
        variables = super().get_traceback_frame_variables(request, tb_frame)
        secrets = self.secrets_near(tb_frame)
        return [(name, self.mask(name, value, secrets)) for name, value in variables]

    def mask(self, name, value, secrets: set[str]):
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if self.sensitive(name):
            return self.cleansed_substitute
        if isinstance(value, BackendRoute):
            value = dataclasses.replace(
                value, api_key=self.cleansed_substitute, headers=tuple(self.masked_headers(dict(value.headers)).items())
            )
        elif isinstance(value, UpstreamRequest):
            value = dataclasses.replace(value, headers=self.masked_headers(value.headers))
        elif isinstance(value, (dict, list, tuple)):
            value = self.cleanse_setting(name, value)
        return _Shown(redact(pprint(value), *sorted(secrets, key=len, reverse=True)))

    def masked_headers(self, headers: dict) -> dict:
        return {k: self.cleansed_substitute if self.sensitive(k) else v for k, v in headers.items()}

    def secrets_near(self, tb_frame) -> set[str]:
        """Keys held by this frame or its callers: every string that must not be shown."""
        found: set[str] = set()
        frame, depth = tb_frame, 0
        while frame is not None and depth < MAX_FRAMES:
            for name, value in list(frame.f_locals.items()):
                try:
                    self.collect(name, value, found, level=0)
                except Exception:  # an odd object must not break the error page
                    continue
            frame, depth = frame.f_back, depth + 1
        return {s for s in found if len(s) >= MIN_SECRET_LENGTH}

    def collect(self, name, value, found: set[str], *, level: int) -> None:
        if isinstance(value, str):
            if self.sensitive(name):
                found.add(value)
                # "Bearer sk-…": the key alone may appear elsewhere too.
                found.add(value.rpartition(" ")[2])
            return
        if isinstance(value, BackendRoute):
            found.add(value.api_key)
            for header, header_value in value.headers:
                self.collect(header, header_value, found, level=level + 1)
            return
        if isinstance(value, UpstreamRequest):
            for header, header_value in value.headers.items():
                self.collect(header, header_value, found, level=level + 1)
            return
        if level >= 2:
            return
        if isinstance(value, dict):
            for key, item in list(value.items())[:1000]:
                self.collect(key, item, found, level=level + 1)
        elif isinstance(value, (list, tuple, set, frozenset)):
            for item in list(value)[:1000]:
                self.collect(name, item, found, level=level + 1)
        else:
            # An object carrying a route (a request context, a provider call): one level in.
            attributes = getattr(value, "__dict__", None)
            if isinstance(attributes, dict):
                for key, item in list(attributes.items())[:100]:
                    if isinstance(item, (BackendRoute, UpstreamRequest, list, tuple)) or self.sensitive(key):
                        self.collect(key, item, found, level=level + 1)
            slots = getattr(type(value), "__slots__", ()) if not isinstance(value, type) else ()
            for slot in slots if isinstance(slots, (tuple, list)) else ():
                item = getattr(value, slot, None) if isinstance(slot, str) else None
                carries = isinstance(item, (BackendRoute, UpstreamRequest))
                if carries or (self.sensitive(slot) and isinstance(item, str)):
                    self.collect(slot, item, found, level=level + 1)

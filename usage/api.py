"""``GET /api/v1/usage``: usage and cost from the daily roll-ups, filtered and grouped.

Management-API authentication (the admin token or a staff session) comes from the REST
framework defaults (``backends.api_auth``). Bad input answers 400 in OpenAI's error shape.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from usage.selectors import GROUP_DIMENSIONS, usage_summary

PARAMETERS = ("org", "key", "model", "backend", "from", "to", "group_by")
MAX_TEXT = 255


def _invalid(param: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({param: [message]})


def _date(params, name: str) -> datetime.date | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return datetime.date.fromisoformat(raw)
    except ValueError:
        raise _invalid(name, "Expected an ISO date, YYYY-MM-DD.") from None


def _text(params, name: str) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > MAX_TEXT or "\x00" in raw:
        raise _invalid(name, f"At most {MAX_TEXT} characters.")
    return raw


def _key(params) -> int | str | None:
    raw = _text(params, "key")
    if raw is None:
        return None
    if raw.isdigit():
        if int(raw) >= 1 << 63:
            raise _invalid("key", "Not a key id.")
        return int(raw)
    # A prefix as the admin shows it: "eld-AbCd1234…" or just "AbCd1234".
    prefix = raw.removeprefix("eld-").rstrip("…")
    if not (1 <= len(prefix) <= 8) or not prefix.isalnum():
        raise _invalid("key", "Expected a key id or the key's 8-character prefix.")
    return prefix


def _group_by(params) -> tuple[str, ...]:
    raw = params.get("group_by") or ""
    dims = tuple(part.strip() for part in raw.split(",") if part.strip())
    for dim in dims:
        if dim not in GROUP_DIMENSIONS:
            raise _invalid("group_by", f"Unknown dimension {dim[:40]!r}; use {', '.join(GROUP_DIMENSIONS)}.")
    if len(set(dims)) != len(dims):
        raise _invalid("group_by", "A dimension is repeated.")
    return dims


_TEXT_PARAMETERS = {
    "org": "Organisation slug.",
    "key": "Client key id, or its 8-character prefix.",
    "model": "Model id.",
    "backend": "Backend name.",
}
_SCHEMA = extend_schema(
    operation_id="usage_retrieve",
    parameters=[
        *(OpenApiParameter(name, OpenApiTypes.STR, description=text) for name, text in _TEXT_PARAMETERS.items()),
        OpenApiParameter("from", OpenApiTypes.DATE, description="First UTC day, inclusive."),
        OpenApiParameter("to", OpenApiTypes.DATE, description="Last UTC day, inclusive."),
        OpenApiParameter("group_by", OpenApiTypes.STR, description=f"Comma-separated: {', '.join(GROUP_DIMENSIONS)}."),
    ],
    responses={
        200: inline_serializer(
            "Usage",
            {
                "object": serializers.CharField(),
                "from": serializers.DateField(allow_null=True),
                "to": serializers.DateField(allow_null=True),
                "group_by": serializers.ListField(child=serializers.CharField()),
                "totals": serializers.JSONField(),
                "truncated": serializers.BooleanField(required=False),
                "data": serializers.ListField(child=serializers.JSONField(), required=False),
            },
        ),
        400: OpenApiResponse(
            inline_serializer(
                "UsageError",
                {
                    "error": inline_serializer(
                        "UsageErrorBody",
                        {
                            "message": serializers.CharField(),
                            "type": serializers.CharField(),
                            "param": serializers.CharField(allow_null=True),
                            "code": serializers.CharField(allow_null=True),
                        },
                    )
                },
            ),
            description="Bad input, in OpenAI's error shape.",
        ),
    },
)


class UsageView(APIView):
    @_SCHEMA
    def get(self, request):
        params = request.query_params
        unknown = sorted(set(params) - set(PARAMETERS))
        if unknown:
            raise _invalid(unknown[0][:40], f"Unknown parameter; the parameters are {', '.join(PARAMETERS)}.")
        for name in PARAMETERS:
            if len(params.getlist(name)) > 1:
                raise _invalid(name, "Given more than once.")
        day_from, day_to = _date(params, "from"), _date(params, "to")
        if day_from and day_to and day_from > day_to:
            raise _invalid("from", "'from' is after 'to'.")
        group_by = _group_by(params)
        summary = usage_summary(
            organisation=_text(params, "org"),
            key=_key(params),
            model=_text(params, "model"),
            backend=_text(params, "backend"),
            day_from=day_from,
            day_to=day_to,
            group_by=group_by,
            max_groups=settings.ELDRIC_USAGE_API_MAX_GROUPS,
        )
        return Response(
            {
                "object": "usage",
                "from": day_from.isoformat() if day_from else None,
                "to": day_to.isoformat() if day_to else None,
                "group_by": list(group_by),
                **summary,
            }
        )

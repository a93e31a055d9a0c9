"""Shapes of the management API. Validation only: writes go through ``backends.services``."""

import re
from urllib.parse import urlsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backends import capabilities
from backends.models import AuditLog, Backend, BackendKind, HealthStatus
from backends.selectors import backend_live, backend_routable, headers_masked
from backends.url_policy import url_policy
from orgs.models import DEFAULT_ORGANISATION
from orgs.selectors import organisation_exists
from traffic.selectors import BackendLive

MAX_PRIORITY = 2**31 - 1  # the column is a 32-bit PositiveIntegerField on every database
MAX_HEADERS = 32
# Path segments of the API that a backend name would shadow.
RESERVED_NAMES = frozenset({"test"})
UNKNOWN_TYPE = "Unknown type '{input}'; expected one of: " + ", ".join(BackendKind.values) + "."
# A DNS name, an IPv4 address, or an IPv6 literal (urlsplit strips its brackets).
HOST_NAME = re.compile(r"^([A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?|[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9]+)?)$")
# RFC 9110 token characters for a header name.
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class StrictCharField(serializers.CharField):
    """Rejects numbers and booleans instead of turning them into strings."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


@extend_schema_field({"type": "string", "format": "uri", "pattern": "^https?://[^\\s/?#@]+", "maxLength": 500})
class UpstreamUrlField(StrictCharField):
    """An http(s) URL with a host; any host name (``http://ollama:11434``), no credentials."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=500, validators=[validate_upstream_url], **kwargs)


def validate_upstream_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError:
        raise serializers.ValidationError("Not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise serializers.ValidationError("Must be an http:// or https:// URL.")
    if not all(33 <= ord(c) < 127 for c in value):
        raise serializers.ValidationError("Only printable ASCII; percent-encode anything else (punycode for hosts).")
    if not parts.hostname or not HOST_NAME.match(parts.hostname):
        raise serializers.ValidationError("Must be an http(s) URL with a host, e.g. https://api.openai.com/v1.")
    if port == 0:
        raise serializers.ValidationError("Not a valid port.")
    if parts.username or parts.password:
        raise serializers.ValidationError("Put credentials in api_key or headers, not in the URL.")
    # Last, so a malformed URL is never resolved.
    denial = url_policy().check(value)
    if denial is not None:
        raise serializers.ValidationError(f"Not allowed: {denial}.")
    return value


def validate_headers(value: dict) -> dict:
    if len(value) > MAX_HEADERS:
        raise serializers.ValidationError(f"At most {MAX_HEADERS} headers.")
    for name, header_value in value.items():
        if not HEADER_NAME.match(name):
            raise serializers.ValidationError(f"{name!r} is not a valid header name.")
        if not all(c == "\t" or 32 <= ord(c) < 127 for c in header_value):
            raise serializers.ValidationError(f"The value of {name!r} must be printable ASCII.")
    return value


INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_INSTANCES = 64


def validate_instances(value: list) -> list[str]:
    """ELDRIC_INSTANCE names a runtime backend is pinned to; empty: every instance."""
    if not isinstance(value, list):
        raise serializers.ValidationError("A list of instance names (ELDRIC_INSTANCE) is required.")
    if len(value) > MAX_INSTANCES:
        raise serializers.ValidationError(f"At most {MAX_INSTANCES} instances.")
    for name in value:
        if not isinstance(name, str) or not INSTANCE_NAME.match(name):
            raise serializers.ValidationError(
                f"{name!r} is not an instance name (1-64 letters, digits, '.', '-' or '_')."
            )
    return sorted(set(value))


class InstancesField(serializers.ListField):
    """Instance names; an empty list means every instance."""

    def __init__(self, **kwargs) -> None:
        super().__init__(child=StrictCharField(max_length=64), max_length=MAX_INSTANCES, **kwargs)

    def to_internal_value(self, data):
        return validate_instances(super().to_internal_value(data))


def validate_api_key(value: str) -> str:
    # It travels in an HTTP header: anything else would fail on every request.
    if not all(33 <= ord(c) < 127 for c in value):
        raise serializers.ValidationError("Must be printable ASCII without spaces.")
    return value


class UnknownFieldsMixin:
    """Rejects fields the endpoint does not take, so a typo ("api-key") is not silently ignored."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: [f"Unknown field; expected one of: {', '.join(self.fields)}."] for name in unknown}
                )
        return super().to_internal_value(data)


class BackendConfigSerializer(UnknownFieldsMixin, serializers.Serializer):
    """How to reach a backend: the part of the body a connectivity test needs."""

    type = serializers.ChoiceField(choices=BackendKind.choices, error_messages={"invalid_choice": UNKNOWN_TYPE})
    url = UpstreamUrlField()
    api_key = StrictCharField(
        required=False, allow_blank=True, max_length=4096, write_only=True, validators=[validate_api_key], default=""
    )
    headers = serializers.DictField(
        child=StrictCharField(allow_blank=True, max_length=4096, trim_whitespace=False),
        required=False,
        default=dict,
        validators=[validate_headers],
    )

    def validate_type(self, value: str) -> str:
        if value not in BackendKind.values:
            raise serializers.ValidationError(
                f"Unknown type {value!r}; expected one of: {', '.join(BackendKind.values)}."
            )
        return value


class BackendCreateSerializer(BackendConfigSerializer):
    """The seed's body for ``POST /api/v1/backends``, plus the owning organisation's slug."""

    name = serializers.SlugField(max_length=64)
    organisation = serializers.SlugField(max_length=64, required=False, default=DEFAULT_ORGANISATION)
    priority = StrictIntegerField(required=False, default=100, min_value=0, max_value=MAX_PRIORITY)
    enabled = StrictBooleanField(required=False, default=True)
    instances = InstancesField(
        required=False,
        default=list,
        help_text="Pin to these instances (ELDRIC_INSTANCE names); empty or absent: every instance routes to it.",
    )
    responses_api = StrictBooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Serves /v1/responses itself (passed through, not translated); null: the preset's default.",
    )

    def to_internal_value(self, data):
        # A slug check would accept 123 as "123"; names are strings.
        if isinstance(data, dict) and "name" in data and not isinstance(data["name"], str):
            raise serializers.ValidationError({"name": ["Not a valid string."]})
        return super().to_internal_value(data)

    def validate_organisation(self, value: str) -> str:
        if value != DEFAULT_ORGANISATION and not organisation_exists(value):
            raise serializers.ValidationError(f"No organisation {value!r}.")
        return value

    def validate_name(self, value: str) -> str:
        if value in RESERVED_NAMES:
            raise serializers.ValidationError(f"{value!r} is reserved (POST /api/v1/backends/test tests a config).")
        if Backend.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"A backend named {value!r} already exists.")
        return value


class BackendUpdateSerializer(BackendConfigSerializer):
    """``PATCH``: any subset; ``api_key: ""`` removes the key. The name is the id and stays."""

    type = serializers.ChoiceField(
        choices=BackendKind.choices, error_messages={"invalid_choice": UNKNOWN_TYPE}, required=False
    )
    url = UpstreamUrlField(required=False)
    api_key = StrictCharField(
        required=False, allow_blank=True, max_length=4096, write_only=True, validators=[validate_api_key]
    )
    headers = serializers.DictField(
        child=StrictCharField(allow_blank=True, max_length=4096, trim_whitespace=False),
        required=False,
        validators=[validate_headers],
    )
    priority = StrictIntegerField(required=False, min_value=0, max_value=MAX_PRIORITY)
    enabled = StrictBooleanField(required=False)
    instances = InstancesField(required=False, help_text="Pin to these instances; [] unpins (every instance).")
    responses_api = StrictBooleanField(
        required=False,
        allow_null=True,
        help_text="Serves /v1/responses itself (passed through, not translated); null: the preset's default.",
    )


class TrafficWindowSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    errors = serializers.IntegerField()
    failovers = serializers.IntegerField(help_text="Attempts on this backend that failed and handed over.")
    p50_ms = serializers.FloatField(allow_null=True, help_text="Median latency; null without requests.")
    p95_ms = serializers.FloatField(allow_null=True)


class BackendTrafficSerializer(serializers.Serializer):
    last_5m = TrafficWindowSerializer()
    last_60m = TrafficWindowSerializer()


class BackendListOutputSerializer(serializers.ListSerializer):
    """Reads the live state of every listed backend in one go, not once per backend."""

    def to_representation(self, data):
        backends = list(data.all() if hasattr(data, "all") else data)
        self._context[LIVE_CONTEXT] = backend_live(names=[b.name for b in backends])
        return super().to_representation(backends)


LIVE_CONTEXT = "backend_live"


class BackendOutputSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="kind")
    api_key = serializers.CharField(source="api_key_hint", help_text="Masked; the key itself is never returned.")
    health_status = serializers.ChoiceField(
        choices=HealthStatus.choices,
        help_text="auth_failed: the upstream rejected the API key; the backend is out of routing.",
    )
    headers = serializers.SerializerMethodField()
    organisation = serializers.CharField(source="organisation.slug", read_only=True)
    model_count = serializers.IntegerField(read_only=True)
    instances = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Static: the instances whose flags or config file declare it. Runtime: the instances it is "
        "pinned to; empty means every instance.",
    )
    routable = serializers.SerializerMethodField(
        help_text="Would a request be sent here now: enabled, not unhealthy or auth_failed, circuit not open, "
        "not held back by a 429."
    )
    circuit = serializers.SerializerMethodField(
        help_text="Circuit breaker, worst across instances heard from recently: closed, half_open or open."
    )
    rate_limited_until = serializers.SerializerMethodField(help_text="Skipped after a 429 until then; null if not.")
    traffic = serializers.SerializerMethodField(help_text="Requests answered, errors and failovers; latency.")

    class Meta:
        model = Backend
        list_serializer_class = BackendListOutputSerializer
        fields = [
            "name",
            "organisation",
            "type",
            "url",
            "priority",
            "enabled",
            "source",
            "instances",
            "api_key",
            "headers",
            "responses_api",
            "health_status",
            "latency_ms",
            "last_checked_at",
            "last_error",
            "consecutive_failures",
            "model_count",
            "routable",
            "circuit",
            "rate_limited_until",
            "traffic",
        ]

    def get_headers(self, obj) -> dict[str, str]:
        return headers_masked(obj.headers)

    def _live(self, obj) -> BackendLive:
        live = self.context.get(LIVE_CONTEXT) if isinstance(self.context, dict) else None
        if live is None:
            live = backend_live(names=[obj.name])
            if isinstance(self.context, dict):
                self.context[LIVE_CONTEXT] = live
        return live.get(obj.name) or BackendLive()

    def get_routable(self, obj) -> bool:
        return backend_routable(obj, self._live(obj))

    @extend_schema_field(serializers.ChoiceField(choices=["closed", "half_open", "open"]))
    def get_circuit(self, obj) -> str:
        return str(self._live(obj).circuit)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_rate_limited_until(self, obj):
        return self._live(obj).rate_limited_until

    @extend_schema_field(BackendTrafficSerializer)
    def get_traffic(self, obj) -> dict:
        live = self._live(obj)
        return {
            f"last_{minutes}m": {
                "requests": window.requests,
                "errors": window.errors,
                "failovers": window.failovers,
                "p50_ms": window.p50_ms,
                "p95_ms": window.p95_ms,
            }
            for minutes in (5, 60)
            for window in (live.window(minutes),)
        }


# What a model is for, as the management API shows it (``backends.capabilities``).
CAPABILITY_HELP = "model id -> chat, completion, embedding, rerank, image, audio, moderation or unknown."


class BackendDetailOutputSerializer(BackendOutputSerializer):
    models = serializers.SerializerMethodField()
    model_capabilities = serializers.SerializerMethodField(help_text=CAPABILITY_HELP)

    class Meta(BackendOutputSerializer.Meta):
        fields = [*BackendOutputSerializer.Meta.fields, "models_refreshed_at", "models", "model_capabilities"]

    def get_models(self, obj) -> list[str]:
        return list(obj.models.order_by("model_id").values_list("model_id", flat=True))

    def get_model_capabilities(self, obj) -> dict[str, str]:
        rows = obj.models.order_by("model_id").values_list("model_id", "capability")
        return {model_id: capabilities.shown(capability) for model_id, capability in rows}


class ProbeOutputSerializer(serializers.Serializer):
    reachable = serializers.BooleanField()
    http_status = serializers.IntegerField(allow_null=True)
    auth_valid = serializers.BooleanField(
        allow_null=True, help_text="null when the check could not tell (unreachable or a server error)."
    )
    model_count = serializers.IntegerField()
    models = serializers.ListField(child=serializers.CharField())
    model_capabilities = serializers.DictField(child=serializers.CharField(), help_text=CAPABILITY_HELP)
    latency_ms = serializers.FloatField(allow_null=True)
    status = serializers.ChoiceField(choices=HealthStatus.choices)
    error = serializers.CharField(allow_blank=True)

    @staticmethod
    def from_result(result) -> dict:
        auth_valid = {"healthy": True, "auth_failed": False}.get(result.status)
        return {
            "reachable": result.reachable,
            "http_status": result.http_status,
            "auth_valid": auth_valid,
            "model_count": len(result.models),
            "models": sorted(m.id for m in result.models),
            "model_capabilities": {
                m.id: capabilities.shown(m.capability) for m in sorted(result.models, key=lambda m: m.id)
            },
            "latency_ms": result.latency_ms,
            "status": str(result.status),
            "error": result.error,
        }


class AuditLogOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditLog
        fields = ["id", "created_at", "actor", "source", "action", "backend_name", "changes"]

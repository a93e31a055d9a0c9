"""Management API for client keys: ``/api/v1/keys`` and ``/api/v1/keys/<id>``.

The key itself appears once, in the answer to ``POST``; every other answer shows only its
display prefix. ``DELETE`` revokes (the record stays, for usage and audit). Authentication
and the error shape are the management API's (``backends.api_auth``, ``backends.api_errors``).
"""

from __future__ import annotations

from django.http import Http404
from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from orgs import keys
from orgs.models import BudgetPeriod

# The management API's error shape (backends.api_errors), restated: orgs imports nothing from backends.
ERROR = OpenApiResponse(
    inline_serializer(
        "KeyError",
        {
            "error": inline_serializer(
                "KeyErrorBody",
                {
                    "message": serializers.CharField(),
                    "type": serializers.CharField(),
                    "param": serializers.CharField(allow_null=True),
                    "code": serializers.CharField(allow_null=True),
                },
            )
        },
    ),
    description="An error in OpenAI's shape.",
)


class KeyOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    object = serializers.SerializerMethodField()
    name = serializers.CharField()
    organisation = serializers.CharField(source="organisation.slug")
    prefix = serializers.SerializerMethodField()
    models = serializers.ListField(source="allowed_models", child=serializers.CharField())
    rpm = serializers.IntegerField(allow_null=True)
    tpm = serializers.IntegerField(allow_null=True)
    max_concurrent = serializers.IntegerField(allow_null=True)
    budget_usd = serializers.DecimalField(max_digits=14, decimal_places=4, allow_null=True, coerce_to_string=False)
    budget_period = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)
    enabled = serializers.BooleanField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    status = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_object(self, record) -> str:
        return "client_key"

    def get_prefix(self, record) -> str:
        return keys.key_display(record)

    def get_status(self, record) -> str:
        return keys.key_status(record)


class KeyCreatedSerializer(KeyOutputSerializer):
    key = serializers.CharField(help_text="The key itself. Shown only in this answer; store it now.")


class _LimitFields(serializers.Serializer):
    models = serializers.ListField(child=serializers.CharField(max_length=256), max_length=1000, required=False)
    rpm = serializers.IntegerField(min_value=1, max_value=2**31 - 1, allow_null=True, required=False)
    tpm = serializers.IntegerField(min_value=1, max_value=2**31 - 1, allow_null=True, required=False)
    max_concurrent = serializers.IntegerField(min_value=1, max_value=2**31 - 1, allow_null=True, required=False)
    budget_usd = serializers.DecimalField(max_digits=14, decimal_places=4, min_value=0, allow_null=True, required=False)
    budget_period = serializers.ChoiceField(choices=BudgetPeriod.values, required=False)
    expires_at = serializers.DateTimeField(allow_null=True, required=False)

    def validate_models(self, value):
        raw = self.initial_data.get("models") if isinstance(self.initial_data, dict) else None
        if not isinstance(raw, list) or not all(isinstance(m, str) and m.strip() for m in raw):
            raise serializers.ValidationError("Expected a list of glob patterns (strings), e.g. ['gpt-4o*'].")
        return value

    def validate(self, attrs):
        unknown = set(self.initial_data) - set(self.fields) if isinstance(self.initial_data, dict) else set()
        if unknown:
            raise serializers.ValidationError({sorted(unknown)[0]: ["Unknown field."]})
        return attrs


class KeyCreateSerializer(_LimitFields):
    name = serializers.CharField(max_length=200)
    organisation = serializers.SlugField(max_length=64, required=False)


class KeyUpdateSerializer(_LimitFields):
    name = serializers.CharField(max_length=200, required=False)
    enabled = serializers.BooleanField(required=False)


def _invalid(exc: keys.KeyInvalid) -> serializers.ValidationError:
    return serializers.ValidationError({exc.field: [str(exc)]})


def _key_or_404(key_id: str):
    record = keys.key_get(key_id)
    if record is None:
        raise Http404(f"No client key with id {key_id!r}.")
    return record


class KeyListApi(APIView):
    @extend_schema(
        operation_id="keys_list",
        responses={
            200: inline_serializer(
                "KeyList", {"object": serializers.CharField(default="list"), "data": KeyOutputSerializer(many=True)}
            ),
            401: ERROR,
        },
    )
    def get(self, request):
        organisation = request.query_params.get("organisation") or None
        data = KeyOutputSerializer(keys.key_list(organisation=organisation), many=True).data
        return Response({"object": "list", "data": data})

    @extend_schema(
        operation_id="keys_create",
        request=KeyCreateSerializer,
        responses={201: KeyCreatedSerializer, 400: ERROR, 401: ERROR},
    )
    def post(self, request):
        serializer = KeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        try:
            created = keys.key_create(
                name=data.pop("name"),
                organisation=data.pop("organisation", "") or "default",
                models=data.pop("models", None),
                expires_at=data.pop("expires_at", None),
                **data,
            )
        except keys.KeyInvalid as exc:
            raise _invalid(exc) from None
        body = KeyOutputSerializer(keys.key_get(created.record.id)).data
        body["key"] = created.key
        return Response(body, status=status.HTTP_201_CREATED)


class KeyDetailApi(APIView):
    @extend_schema(operation_id="keys_retrieve", responses={200: KeyOutputSerializer, 401: ERROR, 404: ERROR})
    def get(self, request, key_id: str):
        return Response(KeyOutputSerializer(_key_or_404(key_id)).data)

    @extend_schema(
        operation_id="keys_update",
        request=KeyUpdateSerializer,
        responses={200: KeyOutputSerializer, 400: ERROR, 401: ERROR, 404: ERROR},
    )
    def patch(self, request, key_id: str):
        record = _key_or_404(key_id)
        serializer = KeyUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        if record.revoked_at is not None:
            raise serializers.ValidationError({"revoked_at": ["This key is revoked; create a new one."]})
        try:
            keys.key_update(record, **serializer.validated_data)
        except keys.KeyInvalid as exc:
            raise _invalid(exc) from None
        return Response(KeyOutputSerializer(keys.key_get(record.id)).data)

    @extend_schema(operation_id="keys_revoke", responses={200: KeyOutputSerializer, 401: ERROR, 404: ERROR})
    def delete(self, request, key_id: str):
        record = keys.key_revoke(_key_or_404(key_id))
        return Response(KeyOutputSerializer(keys.key_get(record.id)).data)


urlpatterns = [
    path("keys", KeyListApi.as_view(), name="key-list"),
    path("keys/<str:key_id>", KeyDetailApi.as_view(), name="key-detail"),
]

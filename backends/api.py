"""Management API (/api/v1): backends, the model catalogue and the audit log.

Views validate and shape; every write goes through ``backends.services`` (which audits and
bumps the routing version), every read through ``backends.selectors``. Authentication and
permissions come from the REST_FRAMEWORK defaults (``backends.api_auth``).
"""

from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from backends import selectors, services
from backends.api_auth import actor_for
from backends.models import AuditAction, AuditSource, Backend, BackendSource
from backends.serializers import (
    AuditLogOutputSerializer,
    BackendConfigSerializer,
    BackendCreateSerializer,
    BackendDetailOutputSerializer,
    BackendOutputSerializer,
    BackendUpdateSerializer,
    ProbeOutputSerializer,
)
from backends.url_policy import UrlDenied

ERROR = OpenApiResponse(
    inline_serializer(
        "Error",
        {
            "error": inline_serializer(
                "ErrorBody",
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


def list_of(name: str, item):
    return inline_serializer(name, {"object": serializers.CharField(default="list"), "data": item(many=True)})


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def static_conflict(name: str, what: str) -> Conflict:
    return Conflict(
        f"Backend {name!r} comes from --backends or the config file, so it cannot be {what} here; "
        "change the flags or the config file instead. It can be disabled with "
        'PATCH {"enabled": false}.'
    )


def get_backend_or_404(name: str) -> Backend:
    backend = selectors.backend_get(name=name)
    if backend is None:
        raise Http404(f"No backend named {name!r}.")
    return backend


def name_taken(exc: services.BackendNameTaken) -> serializers.ValidationError:
    return serializers.ValidationError({"name": [str(exc)]})


def url_denied(exc: UrlDenied) -> serializers.ValidationError:
    return serializers.ValidationError({"url": [f"Not allowed: {exc}."]})


class BackendListApi(APIView):
    """``GET`` lists every backend; ``POST`` adds one at runtime (the seed's body)."""

    InputSerializer = BackendCreateSerializer
    OutputSerializer = BackendOutputSerializer

    @extend_schema(operation_id="backends_list", responses={200: list_of("BackendList", BackendOutputSerializer)})
    def get(self, request):
        data = self.OutputSerializer(selectors.backend_queryset(), many=True).data
        return Response({"object": "list", "data": data})

    @extend_schema(
        operation_id="backends_create",
        request=BackendCreateSerializer,
        responses={201: BackendDetailOutputSerializer, 400: ERROR, 401: ERROR, 403: ERROR},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            backend = services.backend_create(
                name=data["name"],
                kind=data["type"],
                url=data["url"],
                api_key=data["api_key"],
                priority=data["priority"],
                enabled=data["enabled"],
                headers=data["headers"],
                actor=actor_for(request),
                source=AuditSource.API,
                organisation=data["organisation"],
                instances=data["instances"],
                responses_api=data["responses_api"],
            )
        except services.BackendNameTaken as exc:
            raise name_taken(exc) from None
        except services.UnknownOrganisation as exc:
            raise serializers.ValidationError({"organisation": [str(exc)]}) from None
        # Discovery ran right after the commit: answer with the health and models it found.
        return Response(
            BackendDetailOutputSerializer(get_backend_or_404(backend.name)).data, status=status.HTTP_201_CREATED
        )


class BackendDetailApi(APIView):
    """One backend by name: read, change (``PATCH``), remove."""

    InputSerializer = BackendUpdateSerializer
    OutputSerializer = BackendDetailOutputSerializer

    @extend_schema(operation_id="backends_retrieve", responses={200: BackendDetailOutputSerializer, 404: ERROR})
    def get(self, request, name: str):
        return Response(self.OutputSerializer(get_backend_or_404(name)).data)

    @extend_schema(
        operation_id="backends_update",
        request=BackendUpdateSerializer,
        responses={200: BackendDetailOutputSerializer, 400: ERROR, 404: ERROR, 409: ERROR},
    )
    def patch(self, request, name: str):
        backend = get_backend_or_404(name)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        # Static backends are rewritten from their source on every start and reload; only
        # switching them off and on is meaningful here.
        if backend.source == BackendSource.STATIC and set(data) - {"enabled"}:
            raise static_conflict(name, "changed")
        services.backend_update(
            backend=backend,
            actor=actor_for(request),
            source=AuditSource.API,
            kind=data.get("type"),
            url=data.get("url"),
            api_key=data.get("api_key"),
            priority=data.get("priority"),
            enabled=data.get("enabled"),
            headers=data.get("headers"),
            instances=data.get("instances"),
            responses_api=data.get("responses_api", services.UNCHANGED),
        )
        return Response(self.OutputSerializer(get_backend_or_404(name)).data)

    @extend_schema(operation_id="backends_destroy", responses={204: None, 403: ERROR, 404: ERROR, 409: ERROR})
    def delete(self, request, name: str):
        backend = get_backend_or_404(name)
        if backend.source == BackendSource.STATIC:
            raise static_conflict(name, "deleted")
        services.backend_delete(backend=backend, actor=actor_for(request), source=AuditSource.API)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BackendTestApi(APIView):
    """A live check of a saved backend; the result is also recorded as its health."""

    OutputSerializer = ProbeOutputSerializer

    @extend_schema(
        operation_id="backends_test", request=None, responses={200: ProbeOutputSerializer, 400: ERROR, 404: ERROR}
    )
    def post(self, request, name: str):
        try:
            result = services.backend_test(backend=get_backend_or_404(name))
        except UrlDenied as exc:
            raise url_denied(exc) from None
        return Response(self.OutputSerializer.from_result(result))


class BackendConfigTestApi(APIView):
    """A live check of a configuration that is not saved (test before you add)."""

    InputSerializer = BackendConfigSerializer
    OutputSerializer = ProbeOutputSerializer

    @extend_schema(
        operation_id="backends_test_config",
        request=BackendConfigSerializer,
        responses={200: ProbeOutputSerializer, 400: ERROR},
    )
    def post(self, request):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            result = services.backend_config_test(
                kind=data["type"], url=data["url"], api_key=data["api_key"], headers=data["headers"]
            )
        except UrlDenied as exc:
            raise url_denied(exc) from None
        return Response(self.OutputSerializer.from_result(result))


class ModelCatalogueBackendSerializer(serializers.Serializer):
    name = serializers.CharField()
    priority = serializers.IntegerField()
    enabled = serializers.BooleanField()
    health_status = serializers.CharField()
    capability = serializers.CharField(
        help_text="What this backend says the model is for: chat, completion, embedding, rerank, image, audio, "
        "moderation, or unknown (neither the provider nor the id says; served as chat and as embeddings)."
    )
    routable = serializers.BooleanField(help_text="Enabled and not unhealthy or auth_failed.")


class ModelCatalogueSerializer(serializers.Serializer):
    id = serializers.CharField()
    object = serializers.CharField()
    capabilities = serializers.ListField(
        child=serializers.CharField(), help_text="As /v1/models shows it: the best-priority backend's capability."
    )
    routable = serializers.BooleanField(help_text="At least one backend can serve it now.")
    backends = ModelCatalogueBackendSerializer(many=True, help_text="Best priority first.")


class ModelListApi(APIView):
    """The catalogue: every model, the backends that serve it, and whether it routes now."""

    OutputSerializer = ModelCatalogueSerializer

    @extend_schema(operation_id="models_list", responses={200: list_of("ModelCatalogueList", ModelCatalogueSerializer)})
    def get(self, request):
        return Response({"object": "list", "data": self.OutputSerializer(selectors.model_catalogue(), many=True).data})


class AuditFilterSerializer(serializers.Serializer):
    backend = serializers.CharField(required=False, default="", max_length=64)
    source = serializers.ChoiceField(choices=AuditSource.choices, required=False, default="")
    action = serializers.ChoiceField(choices=AuditAction.choices, required=False, default="")
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=1000)


class AuditListApi(APIView):
    """Who changed which backend, newest first."""

    FilterSerializer = AuditFilterSerializer
    OutputSerializer = AuditLogOutputSerializer

    @extend_schema(
        operation_id="audit_list",
        parameters=[AuditFilterSerializer],
        responses={200: list_of("AuditList", AuditLogOutputSerializer), 400: ERROR},
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        entries = selectors.audit_list(**filters.validated_data)
        return Response({"object": "list", "data": self.OutputSerializer(entries, many=True).data})


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema (YAML, or JSON with ``?format=json``); errors stay JSON like the API's."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

"""Management API for each instance's own settings (/api/v1/instances): the default backend
and the health-check interval, which the dashboard's Configuration panel edits.

These are the values the instance's flags or config file set at start-up and on reload
(``eldric_cloud/bootstrap.py``, ``reload.py``): a change here lasts until the next of those.
"""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from backends import selectors, services
from backends.api import ERROR, list_of
from backends.models import Backend, WorkerIdentity
from backends.serializers import StrictIntegerField, UnknownFieldsMixin

# As --health-interval and the admin's form.
MIN_HEALTH_INTERVAL_MS = 100
MAX_HEALTH_INTERVAL_MS = 24 * 3600 * 1000


class InstanceOutputSerializer(serializers.ModelSerializer):
    # As its last heartbeat reported it (selectors.instance_describe), as the dashboard shows it.
    live = serializers.SerializerMethodField()
    heartbeat_age_seconds = serializers.SerializerMethodField()
    uptime_seconds = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField(help_text="Load, process figures and the controller client's state.")

    class Meta:
        model = WorkerIdentity
        fields = [
            "instance",
            "worker_id",
            "default_backend",
            "health_interval_ms",
            "created_at",
            "last_seen_at",
            "live",
            "heartbeat_age_seconds",
            "uptime_seconds",
            "report",
        ]

    def _described(self, obj: WorkerIdentity) -> dict:
        return selectors.instance_describe(obj, now=timezone.now())

    def get_live(self, obj: WorkerIdentity) -> bool:
        return self._described(obj)["live"]

    def get_heartbeat_age_seconds(self, obj: WorkerIdentity) -> float | None:
        return self._described(obj)["heartbeat_age_seconds"]

    def get_uptime_seconds(self, obj: WorkerIdentity) -> int | None:
        return self._described(obj)["uptime_seconds"]

    def get_report(self, obj: WorkerIdentity) -> dict:
        return self._described(obj)["report"]


class InstanceUpdateSerializer(UnknownFieldsMixin, serializers.Serializer):
    default_backend = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text='A backend name; "" routes unknown models nowhere.'
    )
    health_interval_ms = StrictIntegerField(
        required=False, min_value=MIN_HEALTH_INTERVAL_MS, max_value=MAX_HEALTH_INTERVAL_MS
    )

    def validate_default_backend(self, value: str) -> str:
        if value and not Backend.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"No backend named {value!r}.")
        return value


def get_instance_or_404(instance: str) -> WorkerIdentity:
    row = selectors.instance_settings_read(instance=instance)
    if row is None:
        raise Http404(f"No instance named {instance!r}.")
    return row


class InstanceListApi(APIView):
    @extend_schema(operation_id="instances_list", responses={200: list_of("InstanceList", InstanceOutputSerializer)})
    def get(self, request):
        rows = WorkerIdentity.objects.order_by("instance")
        return Response({"object": "list", "data": InstanceOutputSerializer(rows, many=True).data})


class InstanceDetailApi(APIView):
    @extend_schema(operation_id="instances_retrieve", responses={200: InstanceOutputSerializer, 404: ERROR})
    def get(self, request, instance: str):
        return Response(InstanceOutputSerializer(get_instance_or_404(instance)).data)

    @extend_schema(
        operation_id="instances_update",
        request=InstanceUpdateSerializer,
        responses={200: InstanceOutputSerializer, 400: ERROR, 404: ERROR},
    )
    def patch(self, request, instance: str):
        get_instance_or_404(instance)
        serializer = InstanceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = services.instance_settings_update(instance=instance, **serializer.validated_data)
        return Response(InstanceOutputSerializer(row).data)

from rest_framework import serializers

from backends.models import Backend


class BackendOutputSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="kind")
    api_key = serializers.CharField(source="api_key_hint")
    health_status = serializers.CharField()
    model_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Backend
        fields = [
            "name",
            "type",
            "url",
            "priority",
            "enabled",
            "source",
            "api_key",
            "headers",
            "health_status",
            "latency_ms",
            "last_checked_at",
            "last_error",
            "consecutive_failures",
            "model_count",
        ]

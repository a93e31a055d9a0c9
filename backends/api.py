"""Management API for backends (/api/v1/backends)."""

from django.db.models import Count
from rest_framework.response import Response
from rest_framework.views import APIView

from backends.models import Backend
from backends.serializers import BackendOutputSerializer


class BackendListApi(APIView):
    def get(self, request):
        backends = Backend.objects.annotate(model_count=Count("models")).order_by("priority", "name")
        return Response({"object": "list", "data": BackendOutputSerializer(backends, many=True).data})

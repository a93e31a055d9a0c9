"""``/api/v1/licenses``: each organisation's license state; install a license file.

``POST`` takes the license file's content as the body (it is one JSON object), e.g.
``curl -X POST --data-binary @license.json -H 'Content-Type: application/json' …``.
Authentication is the management API's (``backends.api_auth``, the REST_FRAMEWORK defaults).
"""

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from orgs.license_files import LicenseInvalid
from orgs.licenses import license_state_for, license_state_get, license_states_get
from orgs.models import DEFAULT_ORGANISATION, Organisation
from orgs.services import license_install


class InvalidLicense(exceptions.APIException):
    """400 ``invalid_license``, naming what is wrong (never echoing a key)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_license"


class LicenseLimitsSerializer(serializers.Serializer):
    cloud_workers = serializers.IntegerField(allow_null=True, help_text="null: unlimited")
    backends = serializers.IntegerField(allow_null=True, help_text="Backends per worker; null: unlimited.")
    auto_discovery = serializers.BooleanField()
    priority_routing = serializers.BooleanField()
    health_monitoring = serializers.BooleanField()
    dashboard = serializers.BooleanField()
    runtime_backends = serializers.BooleanField(help_text="Runtime backend add/remove.")


class LicenseStateSerializer(serializers.Serializer):
    organisation = serializers.CharField()
    status = serializers.ChoiceField(choices=["none", "invalid", "valid", "grace", "expired"])
    tier = serializers.CharField(help_text="The tier in force now (free unless a license is valid or in grace).")
    licensed_tier = serializers.CharField(allow_null=True, help_text="The tier the installed license names.")
    license_id = serializers.CharField(allow_null=True)
    issued_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    grace_until = serializers.DateTimeField(allow_null=True)
    overrides = serializers.DictField()
    limits = LicenseLimitsSerializer()
    warning = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True, help_text="Why an installed license is not honoured.")


class LicenseListApi(APIView):
    """``GET``: the license state of every organisation. ``POST``: install a license file."""

    @extend_schema(
        operation_id="licenses_list",
        responses={
            200: inline_serializer(
                "LicenseStateList",
                {"object": serializers.CharField(default="list"), "data": LicenseStateSerializer(many=True)},
            )
        },
    )
    def get(self, request):
        states = license_states_get()
        # The default organisation (the installation's license) is always listed, first.
        others = Organisation.objects.exclude(slug=DEFAULT_ORGANISATION).values_list("slug", flat=True)
        data = [license_state_for(states, slug).describe() for slug in (DEFAULT_ORGANISATION, *others)]
        return Response({"object": "list", "data": data})

    @extend_schema(
        operation_id="licenses_install",
        request={"application/json": {"type": "object", "description": "The license file's content."}},
        responses={
            201: LicenseStateSerializer,
            400: OpenApiResponse(description="Not a valid license (code invalid_license)."),
            401: OpenApiResponse(description="No or a wrong admin token."),
        },
    )
    def post(self, request):
        try:
            document = request.data
        except exceptions.ParseError:
            raise InvalidLicense("The body must be the license file's content (one JSON object).") from None
        if not isinstance(document, dict):
            raise InvalidLicense("The body must be the license file's content (one JSON object).")
        try:
            row = license_install(document=dict(document))
        except LicenseInvalid as exc:
            raise InvalidLicense(f"Not a valid license: {exc}.") from None
        state = license_state_get(row.organisation.slug)
        return Response(state.describe(), status=status.HTTP_201_CREATED)


urlpatterns = [path("licenses", LicenseListApi.as_view(), name="license-list")]

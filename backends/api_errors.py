"""DRF errors in the OpenAI shape, so every client of this service parses one format."""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from backends.api_parsers import RequestTooLarge
from backends.providers.base import OpenAIError
from orgs.license_gates import LicenseLimit


class LicenseLimitDenied(exceptions.PermissionDenied):
    """403 ``license_limit``: the change needs a license the organisation does not have."""

    default_code = LicenseLimit.code

    def __init__(self, limit: LicenseLimit) -> None:
        super().__init__(limit.message, code=LicenseLimit.code)
        self.param = None


def _first_message(detail, path=()) -> tuple[str, str | None]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            return _first_message(value, (*path, str(key)))
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], path)
    param = ".".join(p for p in path if p != "non_field_errors") or None
    text = str(detail)
    return (f"{param}: {text}" if param else text), param


def openai_shaped_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        # Django's own check on Content-Length (DATA_UPLOAD_MAX_MEMORY_SIZE = ELDRIC_MAX_BODY_BYTES).
        exc = RequestTooLarge(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, LicenseLimit):
        exc = LicenseLimitDenied(exc)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        message, param = _first_message(exc.detail)
        error = OpenAIError(response.status_code, message, param=param, code="invalid_value")
        data = error.as_dict()
        data["error"]["fields"] = exc.detail
        return Response(data, status=response.status_code)
    detail = getattr(exc, "detail", str(exc))
    code = getattr(detail, "code", None) if not isinstance(detail, (dict, list)) else None
    error = OpenAIError(response.status_code, str(detail), param=getattr(exc, "param", None), code=code)
    return Response(error.as_dict(), status=response.status_code, headers=_auth_headers(response))


def _auth_headers(response) -> dict:
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" in response:
        return {"WWW-Authenticate": response["WWW-Authenticate"]}
    return {}

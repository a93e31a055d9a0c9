"""ELDRIC_DEBUG=1: Django's technical 500 page must not show a decrypted upstream key."""

import sys

from django.test import RequestFactory
from django.views.debug import technical_500_response

from backends.providers import provider_for
from backends.snapshot import BackendRoute

RAW_KEY = "sk-live-DEBUGPAGE-0a1b2c3d4e5f"
HEADER_SECRET = "azure-SECRET-HEADER-99887766"


def call_upstream(route: BackendRoute) -> None:
    request = provider_for(route.kind).models_request(route)
    headers = dict(request.headers)
    authorization = headers["authorization"]
    value = f"Bearer {route.api_key}"  # a plain string under an innocent name
    inner(value, authorization)


def inner(text: str, auth_header: str) -> None:
    forwarded = {"x-api-key": RAW_KEY, "accept": "application/json"}
    raise RuntimeError(f"the upstream call failed ({len(forwarded)} headers)")


def render(settings) -> str:
    settings.DEBUG = True
    route = BackendRoute(
        name="openai",
        kind="openai_compatible",
        url="http://127.0.0.1:9/v1",
        api_key=RAW_KEY,
        headers=(("api-key", HEADER_SECRET), ("x-team", "ml")),
    )
    request = RequestFactory().post("/api/v1/backends", HTTP_AUTHORIZATION=f"Bearer {RAW_KEY}")
    try:
        call_upstream(route)
    except RuntimeError:
        response = technical_500_response(request, *sys.exc_info())
    return response.content.decode()


def test_the_technical_500_page_does_not_show_the_raw_key(settings):
    page = render(settings)

    assert "the upstream call failed" in page  # it is the page with the frames
    assert "call_upstream" in page and "x-team" in page
    assert RAW_KEY not in page
    assert HEADER_SECRET not in page


def test_the_plain_text_report_does_not_show_the_raw_key(settings):
    from django.views.debug import ExceptionReporter

    settings.DEBUG = True
    route = BackendRoute(name="o", kind="openai_compatible", url="http://127.0.0.1:9/v1", api_key=RAW_KEY)
    try:
        call_upstream(route)
    except RuntimeError:
        text = ExceptionReporter(None, *sys.exc_info()).get_traceback_text()

    assert "call_upstream" in text
    assert RAW_KEY not in text


def test_settings_holding_keys_are_masked(settings):
    settings.ELDRIC_MASTER_KEY = RAW_KEY
    settings.ELDRIC_ADMIN_TOKEN = "eldadm_" + RAW_KEY

    assert RAW_KEY not in render(settings)


def test_the_filter_is_the_default():
    from django.conf import settings

    assert settings.DEFAULT_EXCEPTION_REPORTER_FILTER == "backends.debug_filter.SecretMaskingReporterFilter"

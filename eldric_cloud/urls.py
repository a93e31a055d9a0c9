from django.contrib import admin
from django.urls import include, path

from backends.api import SchemaApi
from gateway import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("backends.urls")),
    path("api/v1/", include("orgs.urls")),
    path("api/v1/", include("usage.urls")),
    # Same authentication as /api/v1 (SPECTACULAR_SETTINGS SERVE_* in settings).
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("dashboard/", include("dashboard.urls")),
    path("metrics", metrics_view.metrics, name="metrics"),
]

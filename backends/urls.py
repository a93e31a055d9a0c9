from django.urls import path

from backends.api import (
    AuditListApi,
    BackendConfigTestApi,
    BackendDetailApi,
    BackendListApi,
    BackendTestApi,
    ModelListApi,
)
from backends.instance_api import InstanceDetailApi, InstanceListApi

urlpatterns = [
    path("backends", BackendListApi.as_view(), name="backend-list"),
    # Before the detail route: "test" is a reserved backend name.
    path("backends/test", BackendConfigTestApi.as_view(), name="backend-config-test"),
    path("backends/<str:name>", BackendDetailApi.as_view(), name="backend-detail"),
    path("backends/<str:name>/test", BackendTestApi.as_view(), name="backend-test"),
    path("models", ModelListApi.as_view(), name="model-list"),
    path("audit", AuditListApi.as_view(), name="audit-list"),
    path("instances", InstanceListApi.as_view(), name="instance-list"),
    path("instances/<str:instance>", InstanceDetailApi.as_view(), name="instance-detail"),
]

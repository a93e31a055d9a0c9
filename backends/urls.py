from django.urls import path

from backends.api import BackendListApi

urlpatterns = [
    path("backends", BackendListApi.as_view(), name="backend-list"),
]

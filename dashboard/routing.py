"""Websocket routes, built with the process's publisher (eldric_cloud/asgi.py)."""

from django.urls import path

from dashboard.consumers import DashboardConsumer
from dashboard.publisher import DashboardPublisher

WEBSOCKET_PATH = "dashboard/ws/"


def websocket_urlpatterns(publisher: DashboardPublisher) -> list:
    return [path(WEBSOCKET_PATH, DashboardConsumer.as_asgi(publisher=publisher), name="dashboard-ws")]

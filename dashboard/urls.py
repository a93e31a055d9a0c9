from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.overview, name="dashboard"),
    path("api/state", views.state_api, name="dashboard-state"),
    path("api/traffic", views.traffic_api, name="dashboard-traffic"),
]

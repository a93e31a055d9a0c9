from orgs import api_keys, api_licenses

urlpatterns = [*api_keys.urlpatterns, *api_licenses.urlpatterns]

"""(Filled in.)"""

urlpatterns: list = []

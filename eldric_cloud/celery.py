import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")

app = Celery("eldric_cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

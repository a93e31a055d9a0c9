import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")


class ThreadedBeat(bootsteps.StartStopStep):
    """Beat on a thread of the worker, when the worker is built with ``beat_thread=True`` (the
    embedded worker is: eldric_cloud/embedded_worker.py). ``-B`` forks beat into a process
    of its own, a second copy of Django and the apps for a scheduler that only sends messages."""

    label = "Beat (thread)"
    conditional = True

    def __init__(self, w, beat_thread=False, **kwargs):
        self.enabled = beat_thread
        super().__init__(w, **kwargs)

    def create(self, w):
        from celery.beat import EmbeddedService

        return EmbeddedService(w.app, thread=True, schedule_filename=w.schedule_filename, scheduler_cls=w.scheduler)


app = Celery("eldric_cloud")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.steps["worker"].add(ThreadedBeat)
app.autodiscover_tasks()

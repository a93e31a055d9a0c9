from __future__ import annotations

from django.apps import AppConfig


class TrafficConfig(AppConfig):
    name = "traffic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Process-wide metric objects live here, built once on first use (the Celery worker
        # and start-up record probes; the gateway builds its own in the TrafficRecorder).
        self._probe_metrics = None
        from celery.signals import worker_shutdown

        worker_shutdown.connect(_worker_stopped, weak=False, dispatch_uid="traffic.worker_stopped")

    def probe_metrics(self):
        if self._probe_metrics is None:
            from traffic.metrics import ProbeMetrics

            self._probe_metrics = ProbeMetrics()
        return self._probe_metrics


def _worker_stopped(**kwargs) -> None:
    from traffic.services import metrics_process_dead

    metrics_process_dead()

# Several instances on one database: static backends belong to the instances that declare
# them, runtime backends may be pinned to instances, and the default backend, health
# interval and controller URL move from the single GatewaySettings row to each instance's row.

from django.db import migrations, models


def forwards(apps, schema_editor):
    Backend = apps.get_model("backends", "Backend")
    GatewaySettings = apps.get_model("backends", "GatewaySettings")
    WorkerIdentity = apps.get_model("backends", "WorkerIdentity")
    # Until now every instance applied its configuration to all static backends; the rows
    # there are go to the instance named "default" (ELDRIC_INSTANCE's default).
    Backend.objects.filter(source="static").update(instances=["default"])
    row = GatewaySettings.objects.filter(pk=1).first()
    if row is not None:
        # The single row held whichever instance started last; every instance rewrites its
        # own on its next start, so each starts from that.
        WorkerIdentity.objects.update(
            default_backend=row.default_backend,
            health_interval_ms=row.health_interval_ms,
            controller_url=row.controller_url,
        )


def backwards(apps, schema_editor):
    GatewaySettings = apps.get_model("backends", "GatewaySettings")
    WorkerIdentity = apps.get_model("backends", "WorkerIdentity")
    identity = WorkerIdentity.objects.filter(instance="default").first() or WorkerIdentity.objects.first()
    if identity is not None:
        GatewaySettings.objects.filter(pk=1).update(
            default_backend=identity.default_backend,
            health_interval_ms=identity.health_interval_ms,
            controller_url=identity.controller_url,
        )


class Migration(migrations.Migration):
    dependencies = [("backends", "0005_backend_organisation")]

    operations = [
        migrations.AddField(
            model_name="backend",
            name="instances",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddField(
            model_name="workeridentity",
            name="default_backend",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.AddField(
            model_name="workeridentity",
            name="health_interval_ms",
            field=models.PositiveIntegerField(default=60000),
        ),
        migrations.AddField(
            model_name="workeridentity",
            name="controller_url",
            field=models.CharField(blank=True, default="", max_length=500),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="gatewaysettings", name="default_backend"),
        migrations.RemoveField(model_name="gatewaysettings", name="health_interval_ms"),
        migrations.RemoveField(model_name="gatewaysettings", name="controller_url"),
    ]

# Backends belong to an organisation; existing rows go to the default one. Instances heartbeat.

import django.db.models.deletion
from django.db import migrations, models

import orgs.services


def to_default_organisation(apps, schema_editor):
    Organisation = apps.get_model("orgs", "Organisation")
    Backend = apps.get_model("backends", "Backend")
    default, _ = Organisation.objects.get_or_create(slug="default", defaults={"name": "Default organisation"})
    Backend.objects.filter(organisation__isnull=True).update(organisation=default)
    # Static backends keep their configured order: it was their priority (flags) or unknown.
    for position, backend in enumerate(Backend.objects.filter(source="static").order_by("priority", "id")):
        Backend.objects.filter(pk=backend.pk).update(config_position=position)


class Migration(migrations.Migration):
    dependencies = [
        ("backends", "0004_backend_healthy_probe_count"),
        ("orgs", "0002_default_organisation"),
    ]

    operations = [
        migrations.AddField(
            model_name="backend",
            name="config_position",
            field=models.PositiveIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="backend",
            name="organisation",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="backends",
                to="orgs.organisation",
            ),
        ),
        migrations.RunPython(to_default_organisation, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="backend",
            name="organisation",
            field=models.ForeignKey(
                default=orgs.services.default_organisation_pk,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="backends",
                to="orgs.organisation",
            ),
        ),
        migrations.AddField(
            model_name="workeridentity",
            name="last_seen_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
    ]

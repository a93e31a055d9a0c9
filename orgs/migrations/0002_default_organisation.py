from django.db import migrations


def create_default(apps, schema_editor):
    Organisation = apps.get_model("orgs", "Organisation")
    AccessVersion = apps.get_model("orgs", "AccessVersion")
    Organisation.objects.get_or_create(slug="default", defaults={"name": "Default organisation"})
    AccessVersion.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]

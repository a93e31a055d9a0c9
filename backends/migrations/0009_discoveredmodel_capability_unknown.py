# Discovered models' capability: "" (unknown) is now the default, and the models discovery had
# only assumed were "chat" are classified again by their id ("" when the id says nothing).

from django.db import migrations, models

# Kinds whose "chat" rows were a default, not something the provider said. Anthropic's models
# are all chat models, and Cohere's rows were classified from its ``endpoints``.
GUESSED_KINDS = ("openai_compatible", "ollama")


def classify_by_id(apps, schema_editor):
    from backends.capabilities import from_id

    DiscoveredModel = apps.get_model("backends", "DiscoveredModel")
    rows = DiscoveredModel.objects.filter(capability="chat", backend__kind__in=GUESSED_KINDS)
    for row in rows.only("pk", "model_id").iterator():
        capability = from_id(row.model_id)
        if capability != "chat":
            DiscoveredModel.objects.filter(pk=row.pk).update(capability=capability)


class Migration(migrations.Migration):
    dependencies = [
        ("backends", "0008_backend_responses_api"),
    ]

    operations = [
        migrations.AlterField(
            model_name="discoveredmodel",
            name="capability",
            field=models.CharField(
                blank=True, default="", help_text="chat, embedding, rerank, …; empty: unknown.", max_length=16
            ),
        ),
        migrations.RunPython(classify_by_id, migrations.RunPython.noop),
    ]

"""Seed the admin-editable unit costs and the default limit from the catalog
and the CFM_DEFAULT_LIMIT_UNITS setting (existing rows are left alone)."""
from django.conf import settings
from django.db import migrations


def seed(apps, schema_editor):
    from cfm.catalog import UNIT_COSTS

    UnitCost = apps.get_model("quota", "UnitCost")
    QuotaSettings = apps.get_model("quota", "QuotaSettings")
    for configuration, units in UNIT_COSTS.items():
        UnitCost.objects.get_or_create(configuration=configuration, defaults={"units": units})
    QuotaSettings.objects.get_or_create(pk=1, defaults={"default_limit_units": settings.CFM_DEFAULT_LIMIT_UNITS})


class Migration(migrations.Migration):
    dependencies = [("quota", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]

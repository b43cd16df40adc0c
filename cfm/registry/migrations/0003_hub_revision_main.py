"""Hub registrations made without a revision were stored with revision ""
(the Hub's default branch, which is "main") and are now stored with "main",
the contract's default. Old rows get "main" too, so that registering the same
repo again, with or without "main", finds them as duplicates."""

from django.db import migrations


def forwards(apps, schema_editor):
    Registration = apps.get_model("registry", "Registration")
    Registration.objects.filter(source_kind="hub", revision="").update(revision="main")


class Migration(migrations.Migration):

    dependencies = [
        ("registry", "0002_job_claim_and_uploads"),
    ]

    # Backwards: nothing to undo; "main" is what those rows meant.
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]

"""Each registration's job columns become its first run of the one job
runtime (a cfm.jobs Job row); the registration keeps the summary (status,
progress, error, finished_at) and points at the run."""
import django.db.models.deletion
from django.db import migrations, models

_JOB_STATUS = {"queued": "queued", "fetching": "running", "inspecting": "running", "done": "done", "failed": "failed"}


def forwards(apps, schema_editor):
    Registration = apps.get_model("registry", "Registration")
    Job = apps.get_model("jobs", "Job")
    for reg in Registration.objects.filter(job__isnull=True).iterator():
        status = _JOB_STATUS.get(reg.status, "failed")
        if reg.error_code == "cancelled" and status == "failed":
            status = "cancelled"
        job = Job.objects.create(
            kind="inspection", subject_id=reg.pk, owner_id=reg.created_by_id, status=status,
            progress_step=reg.progress_step, progress_done=reg.progress_done, progress_total=reg.progress_total,
            bytes_done=reg.bytes_done, bytes_total=reg.bytes_total, error_code=reg.error_code,
            error_message=reg.error_message, attempts=reg.attempts, claim=reg.claim, worker=reg.worker,
            lease_expires_at=reg.lease_expires_at, run_after=reg.not_before,
            enqueued_at=reg.enqueued_at, started_at=reg.started_at, finished_at=reg.finished_at)
        Job.objects.filter(pk=job.pk).update(created_at=reg.created_at)  # auto_now_add set it to now
        Registration.objects.filter(pk=reg.pk).update(job=job)


def backwards(apps, schema_editor):
    Registration = apps.get_model("registry", "Registration")
    Job = apps.get_model("jobs", "Job")
    for reg in Registration.objects.exclude(job__isnull=True).iterator():
        job = Job.objects.get(pk=reg.job_id)
        Registration.objects.filter(pk=reg.pk).update(
            attempts=job.attempts, claim=job.claim, worker=job.worker, cancel_requested=job.status == "cancelled",
            lease_expires_at=job.lease_expires_at, not_before=job.run_after, enqueued_at=job.enqueued_at,
            started_at=job.started_at)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
        ('registry', '0003_hub_revision_main'),
    ]

    operations = [
        migrations.AddField(
            model_name='registration',
            name='job',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='+', to='jobs.job'),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name='registration', name='attempts'),
        migrations.RemoveField(model_name='registration', name='cancel_requested'),
        migrations.RemoveField(model_name='registration', name='claim'),
        migrations.RemoveField(model_name='registration', name='enqueued_at'),
        migrations.RemoveField(model_name='registration', name='lease_expires_at'),
        migrations.RemoveField(model_name='registration', name='not_before'),
        migrations.RemoveField(model_name='registration', name='started_at'),
        migrations.RemoveField(model_name='registration', name='worker'),
    ]

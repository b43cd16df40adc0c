"""Each Prepare job's runtime columns become a run of the one job runtime
(a cfm.jobs Job row); the PrepareJob keeps its summary and points at it."""
import django.db.models.deletion
from django.db import migrations, models


def forwards(apps, schema_editor):
    PrepareJob = apps.get_model("preparation", "PrepareJob")
    Job = apps.get_model("jobs", "Job")
    for prep in PrepareJob.objects.filter(job__isnull=True).iterator():
        job = Job.objects.create(
            kind="prepare", subject_id=prep.pk, owner_id=prep.created_by_id,
            status="waiting" if prep.status == "review" else prep.status,
            progress_step=prep.stage, bytes_done=prep.bytes_done, bytes_total=prep.bytes_total,
            progress_detail=prep.progress or {}, error_code=prep.error_code, error_message=prep.error_message,
            attempts=prep.attempts, claim=prep.claim,
            lease_expires_at=prep.lease_expires_at, enqueued_at=prep.enqueued_at, started_at=prep.started_at,
            finished_at=prep.finished_at)
        Job.objects.filter(pk=job.pk).update(created_at=prep.created_at)  # auto_now_add set it to now
        PrepareJob.objects.filter(pk=prep.pk).update(job=job)


def backwards(apps, schema_editor):
    PrepareJob = apps.get_model("preparation", "PrepareJob")
    Job = apps.get_model("jobs", "Job")
    for prep in PrepareJob.objects.exclude(job__isnull=True).iterator():
        job = Job.objects.get(pk=prep.job_id)
        PrepareJob.objects.filter(pk=prep.pk).update(
            attempts=job.attempts, claim=job.claim, cancel_requested=job.status == "cancelled",
            lease_expires_at=job.lease_expires_at, enqueued_at=job.enqueued_at)


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
        ('preparation', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='preparejob',
            name='job',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                    related_name='+', to='jobs.job'),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name='preparejob', name='attempts'),
        migrations.RemoveField(model_name='preparejob', name='cancel_requested'),
        migrations.RemoveField(model_name='preparejob', name='claim'),
        migrations.RemoveField(model_name='preparejob', name='enqueued_at'),
        migrations.RemoveField(model_name='preparejob', name='lease_expires_at'),
    ]

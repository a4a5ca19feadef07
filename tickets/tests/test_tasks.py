from datetime import timedelta

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from enque.schedules import PREFIX, declared_jobs, install_periodic_tasks
from tickets.actors import Actor
from tickets.models import ScheduledCommentStatus
from tickets.services import comment_schedule
from tickets.tasks import send_due_scheduled_comments


@pytest.mark.django_db
def test_migrate_installs_every_declared_periodic_job() -> None:
    installed = set(
        PeriodicTask.objects.filter(name__startswith=PREFIX).values_list("task", flat=True)
    )

    assert installed == {job.task for job in declared_jobs()}


@pytest.mark.django_db
def test_installing_twice_changes_nothing_and_disables_undeclared_jobs() -> None:
    PeriodicTask.objects.create(
        name=PREFIX + "retired-job", task="old.task", interval=PeriodicTask.objects.first().interval
    )

    install_periodic_tasks()
    install_periodic_tasks()

    assert PeriodicTask.objects.filter(name__startswith=PREFIX, enabled=True).count() == len(
        declared_jobs()
    )
    assert not PeriodicTask.objects.get(name=PREFIX + "retired-job").enabled


@pytest.mark.django_db
def test_the_beat_task_posts_a_due_reply_once(
    bob, ticket_a, django_capture_on_commit_callbacks
) -> None:
    scheduled = comment_schedule(
        ticket=ticket_a,
        actor=Actor.for_agent(bob),
        send_at=timezone.now() + timedelta(seconds=1),
        body_text="Following up as promised.",
    )
    scheduled.__class__.objects.filter(pk=scheduled.pk).update(
        send_at=timezone.now() - timedelta(seconds=1)
    )

    assert send_due_scheduled_comments.apply().get() == 1
    assert send_due_scheduled_comments.apply().get() == 0

    scheduled.refresh_from_db()
    assert scheduled.status == ScheduledCommentStatus.SENT
    assert scheduled.comment.body_text == "Following up as promised."
    assert ticket_a.comments.filter(body_text="Following up as promised.").count() == 1

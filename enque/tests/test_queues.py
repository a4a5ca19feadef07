"""Tasks are routed to their queue by name (enque/queues.py), including tasks added later."""

from __future__ import annotations

import pytest

from enque import queues, schedules
from enque.celery import app


def queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        # Names the integrations and automation apps will use; they route without a change here.
        ("integrations.tasks.sync_mailbox", queues.MAIL_SYNC),
        ("integrations.tasks.sync_due_mailboxes", queues.MAIL_SYNC),
        ("integrations.tasks.process_inbound_email", queues.MAIL_SYNC),
        ("integrations.tasks.send_reply", queues.MAIL_OUT),
        ("integrations.outbound.deliver", queues.MAIL_OUT),
        ("automation.tasks.run_time_based_automations", queues.AUTOMATIONS),
        ("automation.webhooks.deliver", queues.AUTOMATIONS),
        ("tickets.tasks.send_due_scheduled_comments", queues.DEFAULT),
        ("enque.tasks.purge_expired_api_records", queues.DEFAULT),
    ],
)
def test_tasks_go_to_the_queue_of_their_kind(task_name: str, queue: str) -> None:
    assert queue_of(task_name) == queue


def test_every_registered_task_lands_on_a_queue_a_worker_consumes() -> None:
    app.loader.import_default_modules()
    ours = [name for name in app.tasks if not name.startswith("celery.")]

    assert "tickets.tasks.send_due_scheduled_comments" in ours
    assert {name: queue_of(name) for name in ours if queue_of(name) not in queues.ALL} == {}


def test_every_periodic_job_names_a_registered_task() -> None:
    app.loader.import_default_modules()

    for job in schedules.declared_jobs():
        assert job.task in app.tasks, job.name

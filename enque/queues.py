"""Celery queues, and which tasks go to which, by task name.

Workers are scaled per queue (README "Scale out"): a burst of mailbox syncs must not hold up
a customer's reply, and neither may delay an automation. Routing is by the task's dotted
name, so a task added later lands on the right queue without touching this file, as long
as it lives where its kind lives:

    integrations.tasks.send_*   and  integrations.outbound.*   -> mail_out
    any other integrations.*    (mailbox sync, inbound import)  -> mail_sync
    automation.*                (rules, SLA checks, webhooks)   -> automations
    everything else             (scheduled replies, housekeeping) -> default

Imported by settings (``CELERY_TASK_ROUTES``) and by ``enque.deploy_commands`` (a worker
started without ``--queues`` would consume ``default`` only), so it imports nothing.
"""

from __future__ import annotations

DEFAULT = "default"
MAIL_SYNC = "mail_sync"
MAIL_OUT = "mail_out"
AUTOMATIONS = "automations"

# Every queue; a worker that should do everything consumes all of them.
ALL: tuple[str, ...] = (DEFAULT, MAIL_SYNC, MAIL_OUT, AUTOMATIONS)

# Glob on the task name -> queue. Celery tries the patterns in this order and the first
# match wins, so the narrower outbound patterns come before "integrations.*".
ROUTES: dict[str, dict[str, str]] = {
    "integrations.tasks.send_*": {"queue": MAIL_OUT},
    "integrations.outbound.*": {"queue": MAIL_OUT},
    "integrations.*": {"queue": MAIL_SYNC},
    "automation.*": {"queue": AUTOMATIONS},
}

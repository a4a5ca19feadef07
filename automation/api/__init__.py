"""``/v1`` endpoints of the automation app.

- ``rules``: ``/v1/workflows``, ``/v1/automations`` (nested conditions and actions,
  ``/:id/test`` dry run, ``/:id/runs``) — admins only;
- ``schedules``: ``/v1/business-hours`` (nested slots and holidays), ``/v1/sla-policies``
  (nested targets) — members read, admins write; ``/v1/tickets/:number/sla`` — the time
  left on a ticket's SLA;
- ``macros``: ``/v1/macros`` (+ ``/:id/preview``, ``/:id/apply``);
- ``notifications``: ``/v1/notifications`` (list, read, read-all, unread-count) and
  ``/v1/notification-preferences``.
"""

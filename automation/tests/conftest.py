"""Helpers of the automation tests.

Rules react to ticket changes *after commit*; inside a test's transaction nothing commits,
so ``hooks_run`` runs the on-commit callbacks (and those they register, in turn) at the end
of its block, as a real commit would. Celery tasks run inline (``eager_tasks``), so a
webhook delivery or a notification email happens within the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from automation import services
from automation.models import Automation
from enque.celery import app as celery_app
from workspaces.models import Agent


@pytest.fixture(autouse=True)
def eager_tasks() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def hooks_run(
    django_capture_on_commit_callbacks: Any,
) -> Callable[[], AbstractContextManager[Any]]:
    """``with hooks_run(): <service calls>``: their on-commit work runs at the block's end."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def rule(alice: Agent) -> Callable[..., Automation]:
    """``rule(trigger, conditions=[(field, op, value)], actions=[(type, params)], ...)``,
    created through the service (so validated) as Alice of workspace A, or as ``by``."""

    def make(
        trigger: str,
        *,
        conditions: list[tuple[str, str, Any]] = (),
        actions: list[tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str]] = (),
        by: Agent | None = None,
        **kwargs: Any,
    ) -> Automation:
        actor = by or alice
        return services.automation_create(
            workspace=actor.workspace,
            actor=actor,
            name=kwargs.pop("name", f"Rule {Automation.objects.count() + 1}"),
            trigger=trigger,
            conditions=[{"field": f, "operator": o, "value": v} for f, o, v in conditions],
            actions=[
                {"action_type": a[0], "params": a[1], **({"secret": a[2]} if len(a) > 2 else {})}
                for a in actions
            ],
            **kwargs,
        )

    return make

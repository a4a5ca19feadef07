"""The rule engine: which rules run, in what order, how a firing is recorded, and why
rules cannot loop.

Event rules. ``on_ticket_change`` is a ``tickets.hooks`` listener (subscribed in
``AutomationConfig.ready``), so it runs after the change has committed, never for one that
rolled back. The change's type picks the trigger::

    ticket.created                     -> ticket_created
    ticket.updated (with changes)      -> ticket_updated
    comment.created by the customer    -> customer_replied (not for an auto-reply)
    comment.created, agent, public     -> agent_replied
    comment.created, internal          -> note_added

Order. The workspace's active workflows come first, in their order, each running its
rules in order and stopping after the first rule that matches when it says so; then the
rules outside any workflow, in their order. A rule that fires changes the ticket before the
next one looks at it.

Firing. The run is recorded first (``AutomationRun``, status running), then the actions run
in order, each through the services as ``Actor.for_automation(rule)``; an action that fails
is recorded with its error and the others still run. Then the run gets its outcome, the
ticket's history an ``automation`` entry (rule, actions done, errors), and the rule its
``run_count``. Nothing an action does can undo the change that triggered it: that change
committed before the engine started.

No loops. A change made by a rule carries the chain of rules that led to it
(``Actor.automation_chain``). A rule in the chain is never fired again by it, and a chain
of ``AUTOMATION_MAX_CHAIN_DEPTH`` rules stops there. The chain travels in the change
itself, not in the call stack, so it holds however the on-commit callbacks are run.

Time rules. ``run_time_rules`` (every minute from beat) evaluates the active time rules of
each workspace against that workspace's tickets that are not closed, deleted or merged;
a rule fires once per ticket per *condition window*: ``window_key`` hashes what the
rule's time conditions count from (created_at, updated_at, the last replies, the due
time), so "72 hours since the last update" fires again only after a new update and 72
more hours; a rule without time conditions fires once per ticket. The unique constraint on
(rule, ticket, window) is the claim: a second worker's insert fails and it moves on.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from automation import actions, conditions, sla
from automation.models import (
    ActionType,
    Automation,
    AutomationRun,
    ConditionField,
    RunStatus,
    Trigger,
    Workflow,
)
from enque import cache_versions
from enque.errors import EnqueError
from tickets.actors import Actor
from tickets.hooks import TicketChange
from tickets.models import ActorType, Ticket, TicketEvent, TicketEventKind, TicketStatus

logger = logging.getLogger(__name__)

BATCH = 500


def max_chain_depth() -> int:
    return max(1, int(getattr(settings, "AUTOMATION_MAX_CHAIN_DEPTH", 5)))


def trigger_for(change: TicketChange) -> str | None:
    if change.type == "ticket.created":
        return Trigger.TICKET_CREATED
    if change.type == "ticket.updated":
        return Trigger.TICKET_UPDATED if change.data.get("changes") else None
    if change.type == "comment.created":
        if change.data.get("internal"):
            return Trigger.NOTE_ADDED
        author = change.data.get("author_type")
        if author == "customer":
            # An out-of-office reply is not the customer getting back to us: answering it
            # (an auto-response) would start a mail loop.
            return None if change.data.get("auto_reply") else Trigger.CUSTOMER_REPLIED
        if author == "agent":
            return Trigger.AGENT_REPLIED
    return None


def chain_of(actor: dict[str, Any]) -> tuple[int, ...]:
    chain = actor.get("chain") or ([actor["automation"]] if actor.get("automation") else [])
    return tuple(int(pk) for pk in chain)


# --- Loading rules ----------------------------------------------------------------------------


@dataclass
class Unit:
    """What runs as one: a workflow's rules, or one rule outside any workflow."""

    workflow: Workflow | None
    rules: list[Automation] = field(default_factory=list)

    @property
    def stops_after_match(self) -> bool:
        return bool(self.workflow and self.workflow.stop_after_first_match)


def active_rules(trigger: str) -> QuerySet[Automation]:
    """Active rules of a trigger whose workflow (if any) is active, with their conditions
    and actions: three queries when there are rules, one when there are none."""
    return (
        Automation.objects.filter(trigger=trigger, is_active=True)
        .filter(Q(workflow__isnull=True) | Q(workflow__is_active=True))
        .select_related("workflow")
        .prefetch_related("conditions", "actions")
    )


def units_of(rules: Iterable[Automation]) -> list[Unit]:
    grouped: dict[int, Unit] = {}
    alone: list[Unit] = []
    for rule in rules:
        if rule.workflow_id is None:
            alone.append(Unit(None, [rule]))
        else:
            grouped.setdefault(rule.workflow_id, Unit(rule.workflow)).rules.append(rule)
    workflows = sorted(grouped.values(), key=lambda u: (u.workflow.position, u.workflow.pk))
    for unit in workflows:
        unit.rules.sort(key=lambda r: (r.position, r.pk))
    alone.sort(key=lambda u: (u.rules[0].position, u.rules[0].pk))
    return [*workflows, *alone]


# --- The rules cache ----------------------------------------------------------------------
# Every ticket event needs its workspace's rules for one trigger: three queries, and a chain
# of rules firing repeats them for each change it makes. They are kept per process, under a
# version token in the shared cache that every write of a rule or workflow replaces
# (``rules_changed``, also after commit, so no process keeps what a concurrent reader
# loaded mid-transaction). A cache that is down, or a write that bypassed the services
# (a raw UPDATE), costs at most RULES_CACHE_SECONDS of staleness, never an error.

RULES_CACHE_SECONDS = 60.0
_rules_cache: dict[tuple[int, str], tuple[str, float, list[Unit]]] = {}


def _version_key(workspace_id: int) -> str:
    return f"automation:rules:{workspace_id}"


def _rules_version(workspace_id: int) -> str | None:
    return cache_versions.current_token(_version_key(workspace_id))


def rules_changed(workspace_id: int) -> None:
    """A rule or workflow of the workspace changed: every process reloads its rules."""
    cache_versions.replace_token(_version_key(workspace_id))


def units_for(workspace_id: int, trigger: str) -> list[Unit]:
    """The workspace's active rules for the trigger, in order, from the cache when fresh."""
    version = _rules_version(workspace_id)
    now = time.monotonic()
    cached = _rules_cache.get((workspace_id, trigger))
    if version is not None and cached and cached[0] == version and cached[1] > now:
        return cached[2]
    units = units_of(active_rules(trigger).filter(workspace_id=workspace_id))
    if version is not None:
        _rules_cache[(workspace_id, trigger)] = (version, now + RULES_CACHE_SECONDS, units)
    return units


def load_ticket(ticket_id: int, workspace_id: int) -> Ticket | None:
    return (
        Ticket.objects.filter(
            pk=ticket_id,
            workspace_id=workspace_id,
            deleted_at__isnull=True,
            merged_into__isnull=True,
        )
        .select_related("customer", "workspace")
        .first()
    )


def facts_for(
    ticket: Ticket,
    *,
    now: datetime,
    comment_id: int | None = None,
    schedule_cache: dict | None = None,
) -> conditions.Facts:
    cache = schedule_cache if schedule_cache is not None else {}

    def schedule() -> Any:
        if "schedule" not in cache:
            cache["schedule"] = sla.default_schedule(ticket.workspace_id)
        return cache["schedule"]

    return conditions.Facts(ticket, now=now, comment_id=comment_id, default_schedule=schedule)


# --- Event rules ------------------------------------------------------------------------------


def on_ticket_change(change: TicketChange) -> None:
    """The hooks listener: run the workspace's rules for the change's trigger."""
    trigger = trigger_for(change)
    if trigger is None:
        return
    chain = chain_of(change.actor)
    if len(chain) >= max_chain_depth():
        logger.warning(
            "automation: chain %s on ticket #%s of workspace %s reached the depth limit",
            chain,
            change.ticket_number,
            change.workspace_id,
        )
        return
    units = units_for(change.workspace_id, trigger)
    if not units:
        return
    ticket = load_ticket(change.ticket_id, change.workspace_id)
    if ticket is None:
        return
    run_units(
        units,
        ticket,
        trigger=trigger,
        chain=chain,
        facts=facts_for(ticket, now=timezone.now(), comment_id=change.data.get("comment")),
    )


def run_units(
    units: list[Unit],
    ticket: Ticket,
    *,
    trigger: str,
    chain: tuple[int, ...],
    facts: conditions.Facts,
    fired_windows: set[tuple[int, str]] | None = None,
) -> list[AutomationRun]:
    """Evaluate the units in order on one ticket and fire what matches.

    For time rules, ``fired_windows`` holds the (rule, window) pairs already recorded for
    this ticket: such a rule counts as matched (a workflow stops there) but does not fire.
    """
    runs = []
    for unit in units:
        for rule in unit.rules:
            if rule.pk in chain:
                continue
            if not conditions.matches(rule.match, rule.conditions.all(), facts):
                continue
            key = window_key(rule, facts) if trigger == Trigger.TIME else ""
            if not (fired_windows is not None and (rule.pk, key) in fired_windows):
                run = fire(rule, ticket, trigger=trigger, chain=chain, window=key, now=facts.now)
                if run is not None:
                    runs.append(run)
                    facts.invalidate()
            if unit.stops_after_match:
                break
    return runs


def _outcome(results: list[dict[str, Any]]) -> str:
    failed = sum(1 for r in results if not r["ok"])
    if not failed:
        return RunStatus.SUCCEEDED
    return RunStatus.FAILED if failed == len(results) else RunStatus.PARTIAL


def _execute(ctx: actions.ActionContext, action: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"action_type": action.action_type}
    try:
        detail = actions.execute(ctx, action.action_type, action.params, secret=action.secret)
    except EnqueError as exc:
        entry.update(ok=False, error=exc.message, code=exc.code)
    except Exception as exc:
        # A bug or an outage in one action must not keep the others from running, nor go
        # unrecorded: logged with its traceback, and in the run as an error.
        logger.exception("automation %s: action %s failed", ctx.automation.pk, action.action_type)
        entry.update(ok=False, error=f"Unexpected error ({type(exc).__name__}).", code="error")
    else:
        entry.update(ok=True, detail=detail)
    return entry


def run_actions(ctx: actions.ActionContext, rule_actions: list[Any]) -> list[dict[str, Any]]:
    """The actions in order, one result each. Consecutive ticket-field actions (status,
    priority, category, team, assignee, tags) go through one ``ticket_update`` — one lock,
    one ``ticket.updated``, the later ones winning as they would one by one; if that
    fails, they run one at a time so each failure is told apart."""
    results: list[dict[str, Any]] = []
    i = 0
    while i < len(rule_actions):
        j = i
        while j < len(rule_actions) and rule_actions[j].action_type in actions.FIELD_ACTIONS:
            j += 1
        if j - i > 1:
            group = rule_actions[i:j]
            try:
                changed = actions.execute_fields(ctx, [(a.action_type, a.params) for a in group])
            except EnqueError:
                results.extend(_execute(ctx, a) for a in group)
            else:
                results.extend(
                    {"action_type": a.action_type, "ok": True, "detail": {"changed": changed}}
                    for a in group
                )
            i = j
            continue
        results.append(_execute(ctx, rule_actions[i]))
        i += 1
    return results


def fire(
    rule: Automation,
    ticket: Ticket,
    *,
    trigger: str,
    chain: tuple[int, ...] = (),
    window: str = "",
    now: datetime | None = None,
) -> AutomationRun | None:
    """Run the rule's actions on the ticket and record it all; None when the window was
    already claimed (a time rule that fired, or is firing, elsewhere)."""
    now = now or timezone.now()
    rule_actions = list(rule.actions.all())
    run = AutomationRun(
        workspace_id=ticket.workspace_id,
        automation=rule,
        ticket=ticket,
        trigger=trigger,
        window_key=window,
        chain=list(chain),
        created_at=now,
    )
    # A time rule's run is its claim on the window, so it is written before acting; so is
    # the run of a rule with a webhook (the delivery points at it). Else one write at the
    # end records it all.
    if window or any(a.action_type == ActionType.CALL_WEBHOOK for a in rule_actions):
        try:
            with transaction.atomic():
                run.save(force_insert=True)
        except IntegrityError:
            return None
    ctx = actions.ActionContext(
        ticket=ticket,
        actor=Actor.for_automation(rule.pk, chain=(*chain, rule.pk)),
        automation=rule,
        run=run if run.pk else None,
        trigger=trigger,
    )
    results = run_actions(ctx, rule_actions)
    errors = [
        {"action_type": r["action_type"], "error": r["error"], "code": r["code"]}
        for r in results
        if not r["ok"]
    ]
    run.actions = results
    run.errors = errors
    run.status = _outcome(results)
    with transaction.atomic():
        if run.pk:
            run.save(update_fields=["actions", "errors", "status", "updated_at"])
        else:
            run.save(force_insert=True)
        TicketEvent.objects.create(
            workspace_id=ticket.workspace_id,
            ticket=ticket,
            kind=TicketEventKind.AUTOMATION,
            actor_type=ActorType.AUTOMATION,
            data={
                "automation": rule.pk,
                "name": rule.name,
                "run": run.pk,
                "trigger": trigger,
                "status": run.status,
                "actions": results,
                "errors": errors,
            },
        )
        Automation.objects.filter(pk=rule.pk).update(run_count=F("run_count") + 1, last_run_at=now)
    return run


# --- Time rules -------------------------------------------------------------------------------


def window_key(rule: Automation, facts: conditions.Facts) -> str:
    anchors = sorted(
        {
            f"{c.field}={facts.anchor(c.field)}"
            for c in rule.conditions.all()
            if c.field in conditions.TIME_FIELDS
        }
    )
    if not anchors:
        return "once"
    return hashlib.sha256("|".join(anchors).encode()).hexdigest()[:40]


def time_candidates(workspace_id: int) -> QuerySet[Ticket]:
    return (
        Ticket.objects.for_workspace(workspace_id)
        .filter(deleted_at__isnull=True, merged_into__isnull=True)
        .exclude(status=TicketStatus.CLOSED)
        .select_related("customer", "workspace")
    )


def _unit_filter(unit: Unit, now: datetime) -> Q:
    parts = [conditions.prefilter(r.match, r.conditions.all(), now) for r in unit.rules]
    if any(not part for part in parts):
        return Q()
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


def run_time_rules(*, now: datetime | None = None, workspace_id: int | None = None) -> int:
    """Fire the due time rules of every workspace (or one); returns how many fired."""
    now = now or timezone.now()
    rules = active_rules(Trigger.TIME)
    if workspace_id is not None:
        rules = rules.filter(workspace_id=workspace_id)
    by_workspace: dict[int, list[Automation]] = defaultdict(list)
    for rule in rules:
        by_workspace[rule.workspace_id].append(rule)
    fired = 0
    for ws_id, ws_rules in sorted(by_workspace.items()):
        schedule_cache: dict[str, Any] = {}
        for unit in units_of(ws_rules):
            fired += _run_time_unit(ws_id, unit, now, schedule_cache)
    return fired


def _run_time_unit(ws_id: int, unit: Unit, now: datetime, schedule_cache: dict) -> int:
    fired = 0
    uses_tags = any(c.field == ConditionField.TAGS for r in unit.rules for c in r.conditions.all())
    candidates = time_candidates(ws_id).filter(_unit_filter(unit, now)).order_by("pk")
    if uses_tags:
        candidates = candidates.prefetch_related("tags")
    rule_ids = [r.pk for r in unit.rules]
    last_pk = 0
    while True:
        batch = list(candidates.filter(pk__gt=last_pk)[:BATCH])
        if not batch:
            return fired
        last_pk = batch[-1].pk
        # The windows already fired for this batch: one query instead of one per ticket.
        seen: dict[int, set[tuple[int, str]]] = defaultdict(set)
        for ticket_id, rule_id, key in (
            AutomationRun.objects.filter(
                automation_id__in=rule_ids, ticket_id__in=[t.pk for t in batch]
            )
            .exclude(window_key="")
            .values_list("ticket_id", "automation_id", "window_key")
        ):
            seen[ticket_id].add((rule_id, key))
        for ticket in batch:
            facts = facts_for(ticket, now=now, schedule_cache=schedule_cache)
            fired += len(
                run_units(
                    [unit],
                    ticket,
                    trigger=Trigger.TIME,
                    chain=(),
                    facts=facts,
                    fired_windows=seen[ticket.pk],
                )
            )


# --- Dry run ----------------------------------------------------------------------------------


def dry_run(automation: Automation, ticket: Ticket, *, now: datetime | None = None) -> dict:
    """Which conditions match the ticket now and what the actions would do, changing
    nothing (no run, no history, no cursor moved, no mail, no request)."""
    now = now or timezone.now()
    facts = facts_for(ticket, now=now)
    matched, results = conditions.explain(automation.match, automation.conditions.all(), facts)
    ctx = actions.ActionContext(
        ticket=ticket,
        actor=Actor.for_automation(automation.pk),
        automation=automation,
        trigger=automation.trigger,
    )
    previews = []
    for action in automation.actions.all():
        entry: dict[str, Any] = {
            "id": action.pk,
            "action_type": action.action_type,
            "params": action.params,
        }
        try:
            entry["would"] = actions.preview(ctx, action.action_type, action.params)
        except EnqueError as exc:
            entry["error"] = exc.message
        previews.append(entry)
    result: dict[str, Any] = {
        "automation": automation.pk,
        "ticket": ticket.number,
        "match": automation.match,
        "matched": matched,
        "conditions": [r.__dict__ for r in results],
        "actions": previews,
        "already_fired": False,
    }
    if automation.trigger == Trigger.TIME:
        key = window_key(automation, facts)
        result["window_key"] = key
        result["already_fired"] = AutomationRun.objects.filter(
            automation=automation, ticket=ticket, window_key=key
        ).exists()
    return result

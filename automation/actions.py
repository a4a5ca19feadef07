"""Rule actions (and the ticket changes of macros): parameters, preview, execution.

=====================  ===================================================================
action_type            params
=====================  ===================================================================
set_status             {"status": "pending"}
set_priority           {"priority": "urgent"}
set_category           {"category_id": 4}            (null clears it)
set_team               {"team_id": 3}                (null clears it)
set_assignee           {"agent_id": 7}               (null unassigns; macros also take "me")
assign_round_robin     {"team_id": 3}   the team's next active agent in turn (and the team)
assign_least_loaded    {"team_id": 3}   the team's active agent with the fewest open tickets
add_tags, remove_tags  {"tags": ["billing", "vip"]}
add_note               {"body": "Escalated: {{ticket.subject}}"}   (placeholders filled)
send_canned_reply      {"canned_reply_id": 12}      a shared canned reply, to the customer
notify_agents          {"message": "...", "agent_ids": [7, 9], "team_id": 3,
                        "assignee": true}            at least one of the three recipients
call_webhook           {"url": "https://hooks.example.com/enque"}  (+ the write-only
                        ``secret`` of the action, automation.webhooks signs with it)
=====================  ===================================================================

Every action goes through the services of the app that owns the data (``tickets.services``
for ticket changes and comments, ``automation.notifications``, ``automation.webhooks``),
acting as the rule (``Actor.for_automation``) or, for a macro, as the agent applying it.
"Active agents" of a team are its members who are active and not light agents (a light
agent cannot own tickets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q

from automation.models import ActionType as A
from automation.models import AssignmentCursor
from enque.errors import InvalidInput
from tickets import services as ticket_services
from tickets.actors import Actor
from tickets.models import (
    ACTIVE_STATUSES,
    CannedReply,
    Category,
    CommentVia,
    Ticket,
    TicketPriority,
    TicketStatus,
)
from tickets.placeholders import PlaceholderContext, render_placeholders
from workspaces.models import Agent, AgentRole, Team

MAX_TAGS = 20
MAX_NOTE = 20_000
MAX_MESSAGE = 2_000
MAX_URL = 2_000

# What a macro may do: changes to the ticket and a note (its reply is the canned reply).
MACRO_ACTIONS = (
    A.SET_STATUS,
    A.SET_PRIORITY,
    A.SET_CATEGORY,
    A.SET_TEAM,
    A.SET_ASSIGNEE,
    A.ADD_TAGS,
    A.REMOVE_TAGS,
    A.ADD_NOTE,
)

# Actions that only change the ticket's own fields: consecutive ones are applied together
# (automation.engine.run_actions, execute_fields).
FIELD_ACTIONS = frozenset(
    {
        A.SET_STATUS,
        A.SET_PRIORITY,
        A.SET_CATEGORY,
        A.SET_TEAM,
        A.SET_ASSIGNEE,
        A.ADD_TAGS,
        A.REMOVE_TAGS,
    }
)

PARAMS: dict[str, tuple[str, ...]] = {
    A.SET_STATUS: ("status",),
    A.SET_PRIORITY: ("priority",),
    A.SET_CATEGORY: ("category_id",),
    A.SET_TEAM: ("team_id",),
    A.SET_ASSIGNEE: ("agent_id",),
    A.ASSIGN_ROUND_ROBIN: ("team_id",),
    A.ASSIGN_LEAST_LOADED: ("team_id",),
    A.ADD_TAGS: ("tags",),
    A.REMOVE_TAGS: ("tags",),
    A.ADD_NOTE: ("body",),
    A.SEND_CANNED_REPLY: ("canned_reply_id",),
    A.NOTIFY_AGENTS: ("message", "agent_ids", "team_id", "assignee"),
    A.CALL_WEBHOOK: ("url",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    A.SET_STATUS: ("status",),
    A.SET_PRIORITY: ("priority",),
    A.SET_CATEGORY: ("category_id",),
    A.SET_TEAM: ("team_id",),
    A.SET_ASSIGNEE: ("agent_id",),
    A.ASSIGN_ROUND_ROBIN: ("team_id",),
    A.ASSIGN_LEAST_LOADED: ("team_id",),
    A.ADD_TAGS: ("tags",),
    A.REMOVE_TAGS: ("tags",),
    A.ADD_NOTE: ("body",),
    A.SEND_CANNED_REPLY: ("canned_reply_id",),
    A.NOTIFY_AGENTS: ("message",),
    A.CALL_WEBHOOK: ("url",),
}


# --- Validation -------------------------------------------------------------------------------


def _bad(message: str, at: str, code: str = "invalid_action") -> InvalidInput:
    return InvalidInput(message, code=code, field=at)


def _id(value: Any, at: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad("An id (a positive integer) is required.", at)
    return value


def _exists(queryset: Any, pk: int | None, what: str, at: str) -> None:
    if pk is not None and not queryset.filter(pk=pk).exists():
        raise _bad(f"Unknown {what} in this workspace.", at, code="invalid_reference")


def _assignable(workspace_id: int) -> Any:
    return Agent.objects.filter(workspace_id=workspace_id, is_active=True).exclude(
        role=AgentRole.LIGHT
    )


def validate(
    action_type: str,
    params: Any,
    *,
    workspace_id: int,
    where: str = "action",
    for_macro: bool = False,
) -> dict[str, Any]:
    """``params`` normalised if they fit ``action_type``; else a 400 naming the parameter
    (``<where>.action_type`` or ``<where>.params.<name>``)."""
    allowed_types = MACRO_ACTIONS if for_macro else tuple(PARAMS)
    if action_type not in allowed_types:
        what = "a macro" if for_macro else "a rule"
        raise _bad(
            f"“{action_type}” is not an action of {what}; use one of: {', '.join(allowed_types)}.",
            f"{where}.action_type",
        )
    if not isinstance(params, dict):
        raise _bad("params must be an object.", f"{where}.params")
    at = f"{where}.params"
    unknown = sorted(set(params) - set(PARAMS[action_type]))
    if unknown:
        raise _bad(
            f"“{action_type}” takes no parameter “{unknown[0]}”; it takes: "
            f"{', '.join(PARAMS[action_type])}.",
            f"{at}.{unknown[0]}",
        )
    for name in REQUIRED[action_type]:
        if name not in params:
            raise _bad(f"“{action_type}” needs “{name}”.", f"{at}.{name}")

    if action_type == A.SET_STATUS:
        if params["status"] not in TicketStatus.values:
            raise _bad(f"status must be one of: {', '.join(TicketStatus.values)}.", f"{at}.status")
        return {"status": params["status"]}
    if action_type == A.SET_PRIORITY:
        if params["priority"] not in TicketPriority.values:
            raise _bad(
                f"priority must be one of: {', '.join(TicketPriority.values)}.", f"{at}.priority"
            )
        return {"priority": params["priority"]}
    if action_type == A.SET_CATEGORY:
        pk = _id(params["category_id"], f"{at}.category_id", nullable=True)
        _exists(Category.objects.for_workspace(workspace_id), pk, "category", f"{at}.category_id")
        return {"category_id": pk}
    if action_type in (A.SET_TEAM, A.ASSIGN_ROUND_ROBIN, A.ASSIGN_LEAST_LOADED):
        nullable = action_type == A.SET_TEAM
        pk = _id(params["team_id"], f"{at}.team_id", nullable=nullable)
        _exists(Team.objects.for_workspace(workspace_id), pk, "team", f"{at}.team_id")
        return {"team_id": pk}
    if action_type == A.SET_ASSIGNEE:
        value = params["agent_id"]
        if for_macro and value == "me":
            return {"agent_id": "me"}
        pk = _id(value, f"{at}.agent_id", nullable=True)
        _exists(_assignable(workspace_id), pk, "active agent", f"{at}.agent_id")
        return {"agent_id": pk}
    if action_type in (A.ADD_TAGS, A.REMOVE_TAGS):
        tags = params["tags"]
        if not isinstance(tags, list) or not tags or len(tags) > MAX_TAGS:
            raise _bad(f"tags is a list of 1 to {MAX_TAGS} names.", f"{at}.tags")
        names = []
        for tag in tags:
            if not isinstance(tag, str) or not tag.strip() or len(tag.strip()) > 64:
                raise _bad("Each tag is a name of 1 to 64 characters.", f"{at}.tags")
            names.append(" ".join(tag.split()))
        return {"tags": list(dict.fromkeys(names))}
    if action_type == A.ADD_NOTE:
        body = params["body"]
        if not isinstance(body, str) or not body.strip() or len(body) > MAX_NOTE:
            raise _bad(f"body is a text of 1 to {MAX_NOTE} characters.", f"{at}.body")
        return {"body": body}
    if action_type == A.SEND_CANNED_REPLY:
        pk = _id(params["canned_reply_id"], f"{at}.canned_reply_id")
        shared = CannedReply.objects.for_workspace(workspace_id).filter(owner__isnull=True)
        _exists(shared, pk, "shared canned reply", f"{at}.canned_reply_id")
        return {"canned_reply_id": pk}
    if action_type == A.NOTIFY_AGENTS:
        return _validate_notify(params, workspace_id=workspace_id, at=at)
    # CALL_WEBHOOK
    from automation import webhooks

    url = params["url"]
    if not isinstance(url, str) or len(url) > MAX_URL:
        raise _bad(f"url is a URL of at most {MAX_URL} characters.", f"{at}.url")
    webhooks.check_url(url, field=f"{at}.url")
    return {"url": url.strip()}


def _validate_notify(params: dict[str, Any], *, workspace_id: int, at: str) -> dict[str, Any]:
    message = params["message"]
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        raise _bad(f"message is a text of 1 to {MAX_MESSAGE} characters.", f"{at}.message")
    result: dict[str, Any] = {"message": message}
    agent_ids = params.get("agent_ids")
    if agent_ids is not None:
        if not isinstance(agent_ids, list) or len(agent_ids) > 100:
            raise _bad("agent_ids is a list of at most 100 ids.", f"{at}.agent_ids")
        ids = [_id(pk, f"{at}.agent_ids") for pk in agent_ids]
        found = set(
            Agent.objects.filter(workspace_id=workspace_id, pk__in=ids).values_list("pk", flat=True)
        )
        if missing := [pk for pk in ids if pk not in found]:
            raise _bad(
                f"Unknown agent in this workspace: {missing[0]}.",
                f"{at}.agent_ids",
                code="invalid_reference",
            )
        result["agent_ids"] = list(dict.fromkeys(ids))
    if params.get("team_id") is not None:
        pk = _id(params["team_id"], f"{at}.team_id")
        _exists(Team.objects.for_workspace(workspace_id), pk, "team", f"{at}.team_id")
        result["team_id"] = pk
    if "assignee" in params:
        if not isinstance(params["assignee"], bool):
            raise _bad("assignee is true or false.", f"{at}.assignee")
        result["assignee"] = params["assignee"]
    if not (result.get("agent_ids") or result.get("team_id") or result.get("assignee")):
        raise _bad("Say whom to notify: agent_ids, team_id or assignee.", f"{at}.agent_ids")
    return result


# --- Execution --------------------------------------------------------------------------------


@dataclass
class ActionContext:
    """One rule firing (or macro application) on one ticket."""

    ticket: Ticket
    actor: Actor
    # The agent a macro is applied by: "me", and {{agent.*}} placeholders.
    agent: Agent | None = None
    automation: Any = None
    run: Any = None
    trigger: str = ""
    via: str = CommentVia.AUTOMATION
    # Dry run: the ticket as the previous actions would have left it.
    simulated: dict[str, Any] = field(default_factory=dict)


def _in_workspace(model: Any, ticket: Ticket, pk: int | None, what: str) -> Any:
    if pk is None:
        return None
    obj = model.objects.filter(workspace_id=ticket.workspace_id, pk=pk).first()
    if obj is None:
        raise InvalidInput(f"The {what} no longer exists.", code="invalid_reference")
    return obj


def _render(text: str, ctx: ActionContext) -> Any:
    ticket = ctx.ticket
    context = PlaceholderContext(
        ticket=ticket, customer=ticket.customer, agent=ctx.agent, workspace=ticket.workspace
    )
    return render_placeholders(text, context)


def team_agents(team: Team) -> Any:
    """The team's active agents, by id (round-robin order)."""
    return (
        _assignable(team.workspace_id)
        .filter(team_memberships__team=team)
        .select_related("user")
        .order_by("pk")
    )


def _cursor(team: Team) -> AssignmentCursor:
    """The team's cursor row, locked: concurrent assignments in one team take turns."""
    cursor = AssignmentCursor.objects.select_for_update().filter(team=team).first()
    if cursor is None:
        try:
            with transaction.atomic():
                AssignmentCursor.objects.create(workspace_id=team.workspace_id, team=team)
        except IntegrityError:
            pass  # created by a concurrent assignment: lock that one
        cursor = AssignmentCursor.objects.select_for_update().get(team=team)
    return cursor


def pick_round_robin(team: Team, *, advance: bool) -> Agent | None:
    """The agent after the last one served, wrapping around; ``advance`` moves the cursor
    (call inside the transaction that assigns, so a failed assignment gives the turn back)."""
    cursor = (
        _cursor(team)
        if advance
        else AssignmentCursor.objects.filter(team=team).first() or AssignmentCursor(team=team)
    )
    agents = list(team_agents(team))
    if not agents:
        return None
    last = cursor.last_agent_id or 0
    chosen = next((a for a in agents if a.pk > last), agents[0])
    if advance:
        cursor.last_agent = chosen
        cursor.save(update_fields=["last_agent", "updated_at"])
    return chosen


def pick_least_loaded(team: Team, *, lock: bool) -> Agent | None:
    """The active agent with the fewest tickets in an active status (ties: lowest id).

    One query (the agents with their counts). ``lock`` takes the team's cursor row first so
    concurrent assignments in the team count each other's tickets.
    """
    if lock:
        _cursor(team)
    load = Count(
        "assigned_tickets",
        filter=Q(
            assigned_tickets__status__in=ACTIVE_STATUSES,
            assigned_tickets__deleted_at__isnull=True,
        ),
    )
    return team_agents(team).annotate(load=load).order_by("load", "pk").first()


def _state(ctx: ActionContext) -> dict[str, Any]:
    """The ticket's fields as the previous (simulated) actions left them."""
    if not ctx.simulated:
        ticket = ctx.ticket
        ctx.simulated = {
            "status": ticket.status,
            "priority": ticket.priority,
            "category": ticket.category_id,
            "team": ticket.team_id,
            "assignee": ticket.assignee_id,
            "tags": sorted(ticket.tags.values_list("name", flat=True)),
        }
    return ctx.simulated


def _change(ctx: ActionContext, name: str, new: Any) -> dict[str, Any]:
    state = _state(ctx)
    old = state[name]
    state[name] = new
    return {"field": name, "old": old, "new": new, "changes": old != new}


def _tags_after(current: list[str], action_type: str, tags: list[str]) -> list[str]:
    lowered = {t.lower() for t in tags}
    if action_type == A.ADD_TAGS:
        known = {t.lower() for t in current}
        return sorted([*current, *(t for t in tags if t.lower() not in known)])
    return sorted(t for t in current if t.lower() not in lowered)


def preview(ctx: ActionContext, action_type: str, params: dict[str, Any]) -> dict[str, Any]:
    """What the action would do to the ticket now, without doing anything."""
    ticket = ctx.ticket
    if action_type == A.SET_STATUS:
        return _change(ctx, "status", params["status"])
    if action_type == A.SET_PRIORITY:
        return _change(ctx, "priority", params["priority"])
    if action_type == A.SET_CATEGORY:
        return _change(ctx, "category", params["category_id"])
    if action_type == A.SET_TEAM:
        return _change(ctx, "team", params["team_id"])
    if action_type == A.SET_ASSIGNEE:
        agent_id = params["agent_id"]
        if agent_id == "me":
            agent_id = ctx.agent.pk if ctx.agent else None
        return _change(ctx, "assignee", agent_id)
    if action_type in (A.ASSIGN_ROUND_ROBIN, A.ASSIGN_LEAST_LOADED):
        team = _in_workspace(Team, ticket, params["team_id"], "team")
        if action_type == A.ASSIGN_ROUND_ROBIN:
            agent = pick_round_robin(team, advance=False)
        else:
            agent = pick_least_loaded(team, lock=False)
        _change(ctx, "team", team.pk)
        return _change(ctx, "assignee", agent.pk if agent else None)
    if action_type in (A.ADD_TAGS, A.REMOVE_TAGS):
        current = _state(ctx)["tags"]
        return _change(ctx, "tags", _tags_after(current, action_type, params["tags"]))
    if action_type == A.ADD_NOTE:
        rendered = _render(params["body"], ctx)
        return {"note": rendered.body, "unknown_placeholders": rendered.unknown_placeholders}
    if action_type == A.SEND_CANNED_REPLY:
        canned = _canned(ticket, params["canned_reply_id"])
        rendered = _render(canned.body, ctx)
        return {"reply": rendered.body, "unknown_placeholders": rendered.unknown_placeholders}
    if action_type == A.NOTIFY_AGENTS:
        from automation import notifications

        recipients = notifications.rule_recipients(ticket, params)
        return {
            "notify": [a.pk for a in recipients],
            "message": _render(params["message"], ctx).body,
        }
    # CALL_WEBHOOK
    from automation import webhooks

    return {"webhook": params["url"], "payload": webhooks.rule_payload(ctx)}


def _canned(ticket: Ticket, pk: int) -> CannedReply:
    canned = CannedReply.objects.filter(
        workspace_id=ticket.workspace_id, pk=pk, owner__isnull=True
    ).first()
    if canned is None:
        raise InvalidInput("The canned reply no longer exists.", code="invalid_reference")
    return canned


def execute_fields(ctx: ActionContext, steps: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Several ticket-field actions as one ``ticket_update``; returns the changed fields.
    Raises ``EnqueError`` if any of them cannot be done (nothing is then changed)."""
    ticket = ctx.ticket
    changes: dict[str, Any] = {}
    tags: list[str] | None = None
    for action_type, params in steps:
        if action_type == A.SET_STATUS:
            changes["status"] = params["status"]
        elif action_type == A.SET_PRIORITY:
            changes["priority"] = params["priority"]
        elif action_type == A.SET_CATEGORY:
            changes["category"] = _in_workspace(Category, ticket, params["category_id"], "category")
        elif action_type == A.SET_TEAM:
            changes["team"] = _in_workspace(Team, ticket, params["team_id"], "team")
        elif action_type == A.SET_ASSIGNEE:
            agent_id = params["agent_id"]
            if agent_id == "me":
                agent_id = ctx.agent.pk if ctx.agent else None
            changes["assignee"] = _in_workspace(Agent, ticket, agent_id, "agent")
        else:
            if tags is None:
                tags = sorted(ticket.tags.values_list("name", flat=True))
            tags = _tags_after(tags, action_type, params["tags"])
    if tags is not None:
        changes["tags"] = tags
    return ticket_services.ticket_update(ticket=ticket, actor=ctx.actor, **changes)


def execute(
    ctx: ActionContext, action_type: str, params: dict[str, Any], *, secret: str = ""
) -> dict[str, Any]:
    """Do the action; returns what it did (JSON). Raises ``EnqueError`` when it cannot."""
    ticket, actor = ctx.ticket, ctx.actor
    update = ticket_services.ticket_update
    if action_type == A.SET_STATUS:
        return {"changed": update(ticket=ticket, actor=actor, status=params["status"])}
    if action_type == A.SET_PRIORITY:
        return {"changed": update(ticket=ticket, actor=actor, priority=params["priority"])}
    if action_type == A.SET_CATEGORY:
        category = _in_workspace(Category, ticket, params["category_id"], "category")
        return {"changed": update(ticket=ticket, actor=actor, category=category)}
    if action_type == A.SET_TEAM:
        team = _in_workspace(Team, ticket, params["team_id"], "team")
        return {"changed": update(ticket=ticket, actor=actor, team=team)}
    if action_type == A.SET_ASSIGNEE:
        agent_id = params["agent_id"]
        if agent_id == "me":
            agent_id = ctx.agent.pk if ctx.agent else None
        assignee = _in_workspace(Agent, ticket, agent_id, "agent")
        return {"changed": update(ticket=ticket, actor=actor, assignee=assignee)}
    if action_type in (A.ASSIGN_ROUND_ROBIN, A.ASSIGN_LEAST_LOADED):
        team = _in_workspace(Team, ticket, params["team_id"], "team")
        with transaction.atomic():
            if action_type == A.ASSIGN_ROUND_ROBIN:
                agent = pick_round_robin(team, advance=True)
            else:
                agent = pick_least_loaded(team, lock=True)
            if agent is None:
                raise InvalidInput(
                    f"The team “{team.name}” has no active agent to assign.", code="no_agent"
                )
            changed = update(ticket=ticket, actor=actor, assignee=agent, team=team)
        return {"assignee": agent.pk, "changed": changed}
    if action_type == A.ADD_TAGS:
        return {
            "changed": ticket_services.ticket_add_tags(
                ticket=ticket, actor=actor, tags=params["tags"]
            )
        }
    if action_type == A.REMOVE_TAGS:
        return {
            "changed": ticket_services.ticket_remove_tags(
                ticket=ticket, actor=actor, tags=params["tags"]
            )
        }
    if action_type == A.ADD_NOTE:
        rendered = _render(params["body"], ctx)
        comment = ticket_services.comment_create(
            ticket=ticket, actor=actor, body_text=rendered.body, internal=True, via=ctx.via
        )
        return {"comment": comment.pk}
    if action_type == A.SEND_CANNED_REPLY:
        canned = _canned(ticket, params["canned_reply_id"])
        rendered = _render(canned.body, ctx)
        comment = ticket_services.comment_create(
            ticket=ticket, actor=actor, body_text=rendered.body, via=ctx.via
        )
        CannedReply.objects.filter(pk=canned.pk).update(usage_count=F("usage_count") + 1)
        return {"comment": comment.pk, "unknown_placeholders": rendered.unknown_placeholders}
    if action_type == A.NOTIFY_AGENTS:
        from automation import notifications

        recipients = notifications.rule_recipients(ticket, params)
        notified = notifications.notify(
            recipients=recipients,
            kind="automation",
            ticket=ticket,
            message=_render(params["message"], ctx).body,
            data={"automation": ctx.automation.pk if ctx.automation else None},
        )
        return {"notified": [a.pk for a in notified]}
    # CALL_WEBHOOK
    from automation import webhooks

    delivery = webhooks.delivery_enqueue(ctx=ctx, url=params["url"], secret=secret)
    return {"delivery": delivery.pk}

"""Canned-reply placeholders: ``{{ customer.first_name }}`` filled from a whitelist.

A deliberately small renderer, not a template engine. Canned replies are written by any
agent, so their text must never be able to run anything or reach anything:

- a placeholder is ``{{ name.attr }}`` (spaces inside the braces optional) and is filled
  only when ``name.attr`` is one of ``PLACEHOLDERS``; each value comes from a function
  written here, never from attribute lookups chosen by the text, so ``{{ ticket.__class__ }}``
  or ``{{ customer.company.notes }}`` reach nothing;
- everything else that looks like template syntax — ``{{ 7*7 }}``, ``{% if %}``, ``{# #}``,
  unknown names — is left exactly as written and reported in ``unknown_placeholders`` so
  the author can fix the text;
- values are inserted as plain text in one pass: a customer named ``{{agent.name}}`` stays
  that literal text (no second expansion), and with ``escape_html=True`` a value is
  HTML-escaped so a name like ``<script>`` cannot become markup.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tickets.models import Ticket
from workspaces.models import Agent, Customer, Workspace


@dataclass(frozen=True)
class PlaceholderContext:
    """What a rendering may read. Missing objects render their placeholders empty."""

    ticket: Ticket | None = None
    customer: Customer | None = None
    agent: Agent | None = None
    workspace: Workspace | None = None

    @classmethod
    def for_ticket(cls, ticket: Ticket, *, agent: Agent | None) -> PlaceholderContext:
        """The context of a reply by ``agent`` on ``ticket`` (its customer and workspace)."""
        return cls(ticket=ticket, customer=ticket.customer, agent=agent, workspace=ticket.workspace)


def _first_word(value: str) -> str:
    words = value.split()
    return words[0] if words else ""


def _ticket(read: Callable[[Ticket], object]) -> Callable[[PlaceholderContext], str]:
    return lambda ctx: "" if ctx.ticket is None else str(read(ctx.ticket))


def _customer(read: Callable[[Customer], object]) -> Callable[[PlaceholderContext], str]:
    return lambda ctx: "" if ctx.customer is None else str(read(ctx.customer))


def _agent(read: Callable[[Agent], object]) -> Callable[[PlaceholderContext], str]:
    return lambda ctx: "" if ctx.agent is None else str(read(ctx.agent))


def _workspace(read: Callable[[Workspace], object]) -> Callable[[PlaceholderContext], str]:
    return lambda ctx: "" if ctx.workspace is None else str(read(ctx.workspace))


# The whole vocabulary. Adding a placeholder means adding a line here (and to the docs of
# the canned-reply API), nothing else.
PLACEHOLDERS: dict[str, Callable[[PlaceholderContext], str]] = {
    "ticket.number": _ticket(lambda t: t.number),
    "ticket.subject": _ticket(lambda t: t.subject),
    "ticket.status": _ticket(lambda t: t.get_status_display()),
    "customer.name": _customer(lambda c: c.display_name),
    "customer.first_name": _customer(lambda c: c.first_name),
    "customer.email": _customer(lambda c: c.email),
    "agent.name": _agent(lambda a: a.name),
    "agent.first_name": _agent(lambda a: _first_word(a.name)),
    "workspace.name": _workspace(lambda w: w.name),
}

# Anything template-like: {{ ... }}, {% ... %} or {# ... #}, each without braces inside (so
# "{{ {{ticket.subject}} }}" finds the inner placeholder and leaves the outer braces as
# text). Bounded, linear-time patterns: no nested quantifiers to backtrack over.
_TOKEN_RE = re.compile(r"\{\{([^{}]*)\}\}|\{%[^{}]*%\}|\{#[^{}]*#\}")
_NAME_RE = re.compile(r"\s*([a-z_]+\.[a-z_]+)\s*")


@dataclass(frozen=True)
class Rendered:
    body: str
    # Each template-like token that is not a known placeholder, as written, once, in order.
    unknown_placeholders: list[str] = field(default_factory=list)


def render_placeholders(
    text: str, context: PlaceholderContext, *, escape_html: bool = False
) -> Rendered:
    """Fill the known placeholders of ``text``; leave and report everything else."""
    unknown: dict[str, None] = {}

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        if inner is not None:
            name = _NAME_RE.fullmatch(inner)
            resolve = PLACEHOLDERS.get(name.group(1)) if name else None
            if resolve is not None:
                value = resolve(context)
                return html.escape(value) if escape_html else value
        unknown.setdefault(match.group(0), None)
        return match.group(0)

    return Rendered(body=_TOKEN_RE.sub(replace, text), unknown_placeholders=list(unknown))


def unknown_placeholders(text: str) -> list[str]:
    """The template-like tokens of ``text`` that would not be filled (for editors)."""
    return render_placeholders(text, PlaceholderContext()).unknown_placeholders

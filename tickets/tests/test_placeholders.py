"""The canned-reply placeholder renderer: a whitelist filled as plain text, nothing else.

Unsaved model instances are enough: the renderer reads attributes, never the database.
"""

from __future__ import annotations

import pytest

from tickets.models import Ticket, TicketStatus
from tickets.placeholders import (
    PLACEHOLDERS,
    PlaceholderContext,
    render_placeholders,
    unknown_placeholders,
)
from workspaces.models import Agent, Customer, User, Workspace


@pytest.fixture
def context() -> PlaceholderContext:
    workspace = Workspace(name="Acme Support")
    customer = Customer(workspace=workspace, name="Carol Ann Customer", email="carol@c.test")
    ticket = Ticket(
        workspace=workspace,
        customer=customer,
        number=42,
        subject="Printer on fire",
        status=TicketStatus.PENDING,
    )
    agent = Agent(workspace=workspace, user=User(email="bob@a.test", name="Bob Agent"))
    return PlaceholderContext.for_ticket(ticket, agent=agent)


@pytest.mark.parametrize(
    ("placeholder", "value"),
    [
        ("ticket.number", "42"),
        ("ticket.subject", "Printer on fire"),
        ("ticket.status", "Pending (waiting on customer)"),
        ("customer.name", "Carol Ann Customer"),
        ("customer.first_name", "Carol"),
        ("customer.email", "carol@c.test"),
        ("agent.name", "Bob Agent"),
        ("agent.first_name", "Bob"),
        ("workspace.name", "Acme Support"),
    ],
)
def test_every_placeholder_is_filled(context: PlaceholderContext, placeholder: str, value: str):
    for written in (
        f"{{{{{placeholder}}}}}",
        f"{{{{ {placeholder} }}}}",
        f"{{{{ {placeholder}}}}}",
    ):
        rendered = render_placeholders(f"<{written}>", context)
        assert rendered.body == f"<{value}>"
        assert rendered.unknown_placeholders == []


def test_the_vocabulary_is_exactly_the_documented_one():
    assert set(PLACEHOLDERS) == {
        "ticket.number",
        "ticket.subject",
        "ticket.status",
        "customer.name",
        "customer.first_name",
        "customer.email",
        "agent.name",
        "agent.first_name",
        "workspace.name",
    }


def test_a_whole_reply(context: PlaceholderContext):
    text = (
        "Hi {{customer.first_name}},\n\nAbout #{{ticket.number}} ({{ ticket.subject }}): "
        "fixed.\n\n{{agent.name}}, {{workspace.name}}"
    )

    rendered = render_placeholders(text, context)

    assert rendered.body == (
        "Hi Carol,\n\nAbout #42 (Printer on fire): fixed.\n\nBob Agent, Acme Support"
    )


def test_fallbacks_for_missing_names(context: PlaceholderContext):
    nameless = Customer(name="", email="zed@z.test")
    display = Agent(display_name="Support Bot", user=User(email="x@a.test", name="X Y"))
    ctx = PlaceholderContext(customer=nameless, agent=display)

    rendered = render_placeholders(
        "{{customer.name}}|{{customer.first_name}}|{{agent.name}}|{{agent.first_name}}", ctx
    )

    assert rendered.body == "zed@z.test|zed|Support Bot|Support"


def test_objects_missing_from_the_context_render_empty():
    rendered = render_placeholders("[{{ticket.subject}}][{{agent.name}}]", PlaceholderContext())

    assert rendered.body == "[][]"
    assert rendered.unknown_placeholders == []


@pytest.mark.parametrize(
    "hostile",
    [
        "{{ ticket.__class__ }}",
        "{{ticket.__class__.__mro__}}",
        "{{ ticket.customer.notes }}",
        "{{ customer.company }}",
        "{{ agent.user.password }}",
        "{{ 7*7 }}",
        "{{ ticket.subject|upper }}",
        "{{ settings.SECRET_KEY }}",
        "{{ Customer.Name }}",
        "{{ }}",
        "{% load static %}",
        "{% for x in ticket.comments.all %}",
        "{# a comment #}",
        "{{ customer.name() }}",
        "{{ __import__('os').system('id') }}",
    ],
)
def test_hostile_or_unknown_template_syntax_stays_inert_and_is_reported(
    context: PlaceholderContext, hostile: str
):
    rendered = render_placeholders(f"a {hostile} b", context)

    assert rendered.body == f"a {hostile} b"
    assert rendered.unknown_placeholders == [hostile]


def test_unknown_ones_are_reported_once_each_in_order(context: PlaceholderContext):
    text = "{{ a.b }} {{customer.name}} {{ 7*7 }} {{ a.b }} {% if %}"

    rendered = render_placeholders(text, context)

    assert rendered.body == "{{ a.b }} Carol Ann Customer {{ 7*7 }} {{ a.b }} {% if %}"
    assert rendered.unknown_placeholders == ["{{ a.b }}", "{{ 7*7 }}", "{% if %}"]
    assert unknown_placeholders(text) == ["{{ a.b }}", "{{ 7*7 }}", "{% if %}"]


def test_values_are_inserted_once_as_plain_text(context: PlaceholderContext):
    # A customer who names themselves after a placeholder (or markup) gets exactly that.
    sly = Customer(name="{{agent.name}} <script>x</script>", email="s@c.test")
    ctx = PlaceholderContext(customer=sly, agent=context.agent)

    plain = render_placeholders("Hi {{customer.name}}", ctx)
    as_html = render_placeholders("<p>Hi {{customer.name}}</p>", ctx, escape_html=True)

    assert plain.body == "Hi {{agent.name}} <script>x</script>"
    assert plain.unknown_placeholders == []
    assert as_html.body == "<p>Hi {{agent.name}} &lt;script&gt;x&lt;/script&gt;</p>"


def test_braces_that_are_not_placeholders_are_left_alone(context: PlaceholderContext):
    text = "{ json: {nested} } {{ {{customer.first_name}} }} {{ticket.subject} }}{{"

    rendered = render_placeholders(text, context)

    assert rendered.body == "{ json: {nested} } {{ Carol }} {{ticket.subject} }}{{"
    assert rendered.unknown_placeholders == []


def test_large_hostile_input_renders_in_linear_time(context: PlaceholderContext):
    # Unclosed openers and long runs of braces: no catastrophic backtracking.
    text = "{{" * 20_000 + "{%" * 20_000 + "x" * 20_000 + "{{customer.email}}"

    rendered = render_placeholders(text, context)

    assert rendered.body.endswith("carol@c.test")

"""Plain helpers shared by the automation tests (fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

from enque.tests.factories import AgentFactory, TeamFactory, UserFactory
from tickets.actors import Actor
from tickets.models import Ticket
from tickets.services import ticket_create
from workspaces.models import Agent, AgentRole, Customer, Team, TeamMembership, Workspace


def team_with(workspace: Workspace, *agents: Agent, name: str = "Support") -> Team:
    team = TeamFactory(workspace=workspace, name=name)
    for agent in agents:
        TeamMembership.objects.create(workspace=workspace, team=team, agent=agent)
    return team


def agent_in(workspace: Workspace, email: str, name: str, role: str = AgentRole.AGENT) -> Agent:
    return AgentFactory(workspace=workspace, user=UserFactory(email=email, name=name), role=role)


def write_in(customer: Customer, subject: str = "Help please", **kwargs: Any) -> Ticket:
    return ticket_create(
        workspace=customer.workspace,
        actor=Actor.for_customer(customer),
        subject=subject,
        customer=customer,
        body_text=kwargs.pop("body_text", "Something is broken."),
        channel=kwargs.pop("channel", "email"),
        **kwargs,
    )

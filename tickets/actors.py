"""Who acts: every service takes one of these explicitly, and history records it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tickets.models import ActorType
from workspaces.models import Agent, Customer


@dataclass(frozen=True)
class Actor:
    type: ActorType
    agent: Agent | None = None
    customer: Customer | None = None
    # The rule that acted, for changes made by automations.
    automation_id: int | None = None

    @classmethod
    def for_agent(cls, agent: Agent) -> Actor:
        return cls(ActorType.AGENT, agent=agent)

    @classmethod
    def for_customer(cls, customer: Customer) -> Actor:
        return cls(ActorType.CUSTOMER, customer=customer)

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM)

    @classmethod
    def for_automation(cls, automation_id: int) -> Actor:
        return cls(ActorType.AUTOMATION, automation_id=automation_id)

    @property
    def is_agent(self) -> bool:
        return self.type == ActorType.AGENT

    @property
    def is_customer(self) -> bool:
        return self.type == ActorType.CUSTOMER

    @property
    def workspace_id(self) -> int | None:
        person = self.agent or self.customer
        return person.workspace_id if person else None

    def as_payload(self) -> dict[str, Any]:
        return {
            "type": str(self.type),
            "agent": self.agent.pk if self.agent else None,
            "customer": self.customer.pk if self.customer else None,
            "automation": self.automation_id,
        }

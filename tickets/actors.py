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
    # The rules whose changes led to this one, oldest first, ending with automation_id.
    # The engine never fires a rule of the chain again and bounds its length, so rules
    # cannot trigger each other forever (automation.engine).
    automation_chain: tuple[int, ...] = ()

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
    def for_automation(cls, automation_id: int, *, chain: tuple[int, ...] = ()) -> Actor:
        return cls(ActorType.AUTOMATION, automation_id=automation_id, automation_chain=chain)

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
        payload: dict[str, Any] = {
            "type": str(self.type),
            "agent": self.agent.pk if self.agent else None,
            "customer": self.customer.pk if self.customer else None,
            "automation": self.automation_id,
        }
        if self.automation_chain:
            payload["chain"] = list(self.automation_chain)
        return payload

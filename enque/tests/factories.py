"""factory_boy factories for every model the suite builds often.

Factories write rows directly (they are fixtures, not product code); tests of behaviour
call the services instead, so history and hooks are exercised.
"""

from __future__ import annotations

import factory
from django.utils import timezone

from tickets.models import CannedReply, Category, Comment, Tag, Ticket, TicketCounter
from workspaces.models import Agent, AgentRole, Company, Customer, Team, User, Workspace


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")

    @factory.post_generation
    def counter(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            TicketCounter.objects.get_or_create(workspace=self)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Faker("name")
    password = factory.django.Password("correct horse battery staple")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    workspace = factory.SubFactory(WorkspaceFactory)
    user = factory.SubFactory(UserFactory)
    role = AgentRole.AGENT


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Company {n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    workspace = factory.SubFactory(WorkspaceFactory)
    email = factory.Sequence(lambda n: f"customer{n}@customer.test")
    name = factory.Faker("name")


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Category {n}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"tag-{n}")


class CannedReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CannedReply

    workspace = factory.SubFactory(WorkspaceFactory)
    title = factory.Sequence(lambda n: f"Canned reply {n}")
    body = "Hello {{customer.first_name}}, thanks for writing in."


class TicketFactory(factory.django.DjangoModelFactory):
    """A bare ticket row; use ``tickets.services.ticket_create`` when history matters."""

    class Meta:
        model = Ticket

    workspace = factory.SubFactory(WorkspaceFactory)
    number = factory.Sequence(lambda n: n + 1)
    subject = factory.Faker("sentence", nb_words=6)
    channel = "web"
    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    last_customer_reply_at = factory.LazyFunction(timezone.now)


class CommentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Comment

    ticket = factory.SubFactory(TicketFactory)
    workspace = factory.SelfAttribute("ticket.workspace")
    author_type = "customer"
    author_customer = factory.SelfAttribute("ticket.customer")
    body_text = factory.Faker("paragraph")
    body_html = factory.LazyAttribute(lambda o: f"<p>{o.body_text}</p>")

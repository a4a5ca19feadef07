"""The data model's guarantees that the DATABASE enforces, whatever the Python code does,
and the structural rules every tenant model follows (STYLE.md, "Tenancy is structural")."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from django.apps import apps
from django.db import IntegrityError, models, transaction
from django.db.models import F

from automation.models import BusinessHours, BusinessHoursSlot
from enque.tests.factories import (
    CategoryFactory,
    CommentFactory,
    CompanyFactory,
    CustomerFactory,
    TagFactory,
    TeamFactory,
    TicketFactory,
    UserFactory,
)
from integrations.models import (
    EmailTicketMapping,
    InboundEmail,
    MailboxConnection,
    MailboxProvider,
    MailDirection,
)
from tickets.models import Ticket
from workspaces.models import Customer, TenantModel, User, Workspace


def refused_by_the_database() -> Any:
    """Expect the statement inside to break a constraint; the savepoint keeps the test's
    transaction usable afterwards."""
    return pytest.raises(IntegrityError)


# --- Per-workspace uniqueness ---------------------------------------------------------------


@pytest.mark.django_db
def test_ticket_numbers_are_unique_per_workspace(workspace_a, workspace_b):
    TicketFactory(workspace=workspace_a, number=7)

    with refused_by_the_database(), transaction.atomic():
        TicketFactory(workspace=workspace_a, number=7)
    # Every workspace counts from #1 on its own.
    assert TicketFactory(workspace=workspace_b, number=7).number == 7
    assert Ticket.objects.filter(number=7).count() == 2


@pytest.mark.django_db
def test_customer_email_is_unique_per_workspace_ignoring_case(workspace_a, workspace_b):
    CustomerFactory(workspace=workspace_a, email="carol@customer.test")

    # bulk_create skips Customer.save() and its lowercasing: the constraint itself must hold.
    with refused_by_the_database(), transaction.atomic():
        Customer.objects.bulk_create([Customer(workspace=workspace_a, email="CAROL@Customer.TEST")])
    Customer.objects.bulk_create([Customer(workspace=workspace_b, email="CAROL@Customer.TEST")])
    assert Customer.objects.filter(email__iexact="carol@customer.test").count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "factory",
    [TagFactory, CategoryFactory, TeamFactory, CompanyFactory],
    ids=["tag", "category", "team", "company"],
)
def test_names_are_unique_per_workspace_ignoring_case(factory, workspace_a, workspace_b):
    factory(workspace=workspace_a, name="Billing")

    with refused_by_the_database(), transaction.atomic():
        factory(workspace=workspace_a, name="BILLING")
    assert factory(workspace=workspace_b, name="billing").name == "billing"
    assert factory(workspace=workspace_a, name="Billing 2").name == "Billing 2"


@pytest.mark.django_db
def test_user_email_is_unique_ignoring_case():
    UserFactory(email="alice@a.test")

    # Raw rows, past User.save()'s lowercasing.
    with refused_by_the_database(), transaction.atomic():
        User.objects.bulk_create([User(email="ALICE@A.test")])
    assert User.objects.count() == 1


# --- Check constraints and partial unique constraints -----------------------------------------


@pytest.mark.django_db
def test_a_customer_comment_is_never_internal(workspace_a):
    ticket = TicketFactory(workspace=workspace_a)

    with refused_by_the_database(), transaction.atomic():
        CommentFactory(ticket=ticket, author_type="customer", is_internal=True)
    CommentFactory(ticket=ticket, author_type="agent", author_customer=None, is_internal=True)
    CommentFactory(ticket=ticket, author_type="customer", is_internal=False)
    assert ticket.comments.count() == 2


@pytest.mark.django_db
def test_a_business_hours_slot_opens_before_it_closes(workspace_a):
    office = BusinessHours.objects.create(workspace=workspace_a, name="Office")

    def slot(opens: time, closes: time, weekday: int = 0) -> BusinessHoursSlot:
        return BusinessHoursSlot.objects.create(
            workspace=workspace_a,
            business_hours=office,
            weekday=weekday,
            opens_at=opens,
            closes_at=closes,
        )

    for opens, closes in ((time(17), time(9)), (time(9), time(9))):
        with refused_by_the_database(), transaction.atomic():
            slot(opens, closes)
    with refused_by_the_database(), transaction.atomic():
        slot(time(9), time(17), weekday=7)
    slot(time(9), time(17))
    assert office.slots.count() == 1


@pytest.mark.django_db
def test_one_default_business_hours_per_workspace(workspace_a, workspace_b):
    BusinessHours.objects.create(workspace=workspace_a, name="Office", is_default=True)

    with refused_by_the_database(), transaction.atomic():
        BusinessHours.objects.create(workspace=workspace_a, name="Night shift", is_default=True)
    # Any number of other schedules, and another workspace's own default.
    BusinessHours.objects.create(workspace=workspace_a, name="Night shift")
    BusinessHours.objects.create(workspace=workspace_a, name="Weekend")
    BusinessHours.objects.create(workspace=workspace_b, name="Office", is_default=True)
    assert BusinessHours.objects.filter(is_default=True).count() == 2


def mailbox(workspace: Workspace, address: str = "support@a.test") -> MailboxConnection:
    return MailboxConnection.objects.create(
        workspace=workspace, provider=MailboxProvider.IMAP, email_address=address
    )


def inbound(mailbox: MailboxConnection, message_id: str, provider_id: str = "") -> InboundEmail:
    return InboundEmail.objects.create(
        workspace_id=mailbox.workspace_id,
        mailbox=mailbox,
        raw="inbound/test.eml",
        sha256="0" * 64,
        message_id=message_id,
        provider_message_id=provider_id,
    )


@pytest.mark.django_db
def test_inbound_email_is_stored_once_per_mailbox_and_message_id(workspace_a):
    support, sales = mailbox(workspace_a), mailbox(workspace_a, "sales@a.test")
    inbound(support, "abc@mail.customer.test")

    # The same message fetched twice (or by two racing workers) is refused the second time.
    with refused_by_the_database(), transaction.atomic():
        inbound(support, "abc@mail.customer.test")
    # Sent to two of our mailboxes, it is stored for each.
    inbound(sales, "abc@mail.customer.test")
    assert InboundEmail.objects.count() == 2


@pytest.mark.django_db
def test_email_mapping_provider_id_is_unique_only_when_set(workspace_a):
    support = mailbox(workspace_a)
    ticket = TicketFactory(workspace=workspace_a)

    def mapping(provider_id: str, message_id: str) -> EmailTicketMapping:
        return EmailTicketMapping.objects.create(
            workspace=workspace_a,
            mailbox=support,
            ticket=ticket,
            direction=MailDirection.INBOUND,
            provider_message_id=provider_id,
            message_id=message_id,
        )

    mapping("AAMkAGI2-1", "one@mail.test")
    with refused_by_the_database(), transaction.atomic():
        mapping("AAMkAGI2-1", "other@mail.test")
    # Many messages have no provider id at all (our own outbound mail, uploaded .eml files).
    mapping("", "two@mail.test")
    mapping("", "three@mail.test")
    assert EmailTicketMapping.objects.count() == 3


# --- Structure: every tenant model is built the same way -------------------------------------

TENANT_APPS = ("workspaces", "tickets", "integrations", "automation")
# Global on purpose: the tenant itself, and the login identity shared by many workspaces.
GLOBAL_MODELS = {Workspace, User}


def tenant_app_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models() if m._meta.app_label in TENANT_APPS]


def tenant_models() -> list[type[models.Model]]:
    return [m for m in tenant_app_models() if m not in GLOBAL_MODELS]


def test_every_model_of_the_tenant_apps_is_a_tenant_model_or_listed_as_global():
    seen = tenant_app_models()
    assert {Ticket, Customer, InboundEmail, BusinessHours} <= set(seen)  # the walk found them

    strays = [m.__name__ for m in seen if m not in GLOBAL_MODELS and not issubclass(m, TenantModel)]

    assert strays == [], f"neither TenantModel subclasses nor listed as global: {strays}"


def key_names(item: models.Index | models.UniqueConstraint) -> list[str | None]:
    """The columns an index or unique constraint is built on, in order (None for an
    expression such as Lower("name"))."""
    if item.fields:
        return [name.lstrip("-") for name in item.fields]
    return [e.name if isinstance(e, F) else None for e in item.expressions]


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m.__name__)
def test_tenant_model_has_a_required_workspace_key_that_leads_its_indexes(model):
    workspace = model._meta.get_field("workspace")
    assert isinstance(workspace, models.ForeignKey)
    assert workspace.related_model is Workspace
    assert not workspace.null
    assert hasattr(model.objects, "for_workspace")

    composite = [
        *model._meta.indexes,
        *(c for c in model._meta.constraints if isinstance(c, models.UniqueConstraint)),
    ]
    for item in composite:
        names = key_names(item)
        if "workspace" in names:
            assert names[0] == "workspace", f"{model.__name__}.{item.name} starts with {names[0]}"


@pytest.mark.parametrize("model", tenant_models(), ids=lambda m: m.__name__)
def test_tenant_many_to_many_relations_go_through_tenant_models(model):
    # An auto-created through table would hold tenant rows without a workspace column.
    for field in model._meta.local_many_to_many:
        through = field.remote_field.through
        assert issubclass(through, TenantModel), f"{model.__name__}.{field.name} via {through}"

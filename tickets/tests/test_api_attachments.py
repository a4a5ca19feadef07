"""/v1/attachments: upload (size cap, sanitised names, sniffed types), metadata, download.

Alice is an admin of workspace A, Bob an agent there, Lena a light agent there. Charlie is
the admin of workspace B.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from enque.tests.factories import AgentFactory
from tickets.actors import Actor
from tickets.models import TicketAttachment
from tickets.services import (
    AttachmentTooLarge,
    attachment_upload,
    sanitize_filename,
    sniff_content_type,
    ticket_delete,
)
from tickets.tests.api_support import error, light_agent, use_memory_storage
from workspaces.models import Agent, Workspace

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n" + b"x" * 64


@pytest.fixture(autouse=True)
def media(settings: Any) -> None:
    use_memory_storage(settings)


@pytest.fixture
def bob_api(client_for: Any, bob: Agent) -> APIClient:
    return client_for(bob)


def upload(api: APIClient, data: bytes, name: str = "file.bin", claimed: str = "") -> Any:
    file = SimpleUploadedFile(name, data, content_type=claimed or "application/octet-stream")
    return api.post("/v1/attachments", {"file": file}, format="multipart")


# --- Upload ---------------------------------------------------------------------------------


def test_upload_returns_the_metadata(bob_api: APIClient, bob: Agent) -> None:
    response = upload(bob_api, PNG, "screenshot.png", claimed="text/html")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["filename"] == "screenshot.png"
    # Sniffed from the bytes: the client's "text/html" is ignored.
    assert body["content_type"] == "image/png"
    assert body["size"] == len(PNG)
    assert body["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert (body["ticket"], body["comment_id"]) == (None, None)
    assert body["download_url"].endswith(f"/v1/attachments/{body['id']}/download")
    stored = TicketAttachment.objects.get(pk=body["id"])
    assert (stored.workspace_id, stored.uploaded_by) == (bob.workspace_id, bob)
    assert stored.file.read() == PNG


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\bob\\report.pdf", "report.pdf"),
        ("evil\x00name\x1b[31m.txt", "evilname[31m.txt"),
        ("right\u202etxt.exe", "righttxt.exe"),
        ('a<b>c:d"e|f?g*.txt', "a_b_c_d_e_f_g_.txt"),
        ("   ", "attachment"),
        ("..", "attachment"),
        ("x" * 300 + ".pdf", "x" * 146 + ".pdf"),
        ("Ünïcödé résumé.pdf", "Ünïcödé résumé.pdf"),
    ],
)
def test_filenames_are_sanitised(name: str, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_an_uploaded_path_keeps_only_its_name(bob_api: APIClient) -> None:
    response = upload(bob_api, b"hello", "../../secrets/notes.txt")
    assert response.json()["filename"] == "notes.txt"
    stored = TicketAttachment.objects.get(pk=response.json()["id"])
    assert ".." not in stored.file.name
    assert stored.file.name.startswith(f"attachments/{stored.workspace_id}/")


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (PNG, "x.png", "image/png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "x.jpg", "image/jpeg"),
        (b"GIF89a" + b"\x00" * 16, "x.gif", "image/gif"),
        (PDF, "x.pdf", "application/pdf"),
        (b"PK\x03\x04" + b"\x00" * 16, "x.zip", "application/zip"),
        (
            b"PK\x03\x04" + b"\x00" * 16,
            "x.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "x.webp", "image/webp"),
        (b"Just some notes.\n", "x.txt", "text/plain"),
        (b"<html><script>alert(1)</script></html>", "x.html", "text/plain"),
        (b"<svg onload=alert(1)>", "x.svg", "text/plain"),
        ("Grüße".encode(), "x.txt", "text/plain"),
        (b"\x00\x01\x02\x03binary", "x.bin", "application/octet-stream"),
        (b"\xff\xfe\xfd not utf-8 at all \xff", "x.dat", "application/octet-stream"),
        (b"", "empty.txt", "text/plain"),
    ],
)
def test_content_types_are_sniffed_from_the_bytes(head: bytes, name: str, expected: str) -> None:
    assert sniff_content_type(head, name) == expected


def test_an_upload_over_the_cap_is_a_413(
    bob_api: APIClient, settings: Any, workspace_a: Workspace
) -> None:
    settings.MAX_ATTACHMENT_SIZE = 1000
    response = upload(bob_api, b"x" * 1001, "big.txt")
    assert response.status_code == 413
    body = error(response)
    assert body["code"] == "file_too_large"
    assert body["fields"] == {"file": [body["message"]]}
    assert not TicketAttachment.objects.exists()
    # At the cap exactly is fine.
    assert upload(bob_api, b"x" * 1000, "fits.txt").status_code == 201


def test_a_body_announced_over_the_cap_is_refused_before_it_is_read(
    bob_api: APIClient, settings: Any
) -> None:
    settings.MAX_ATTACHMENT_SIZE = 1000
    # The Content-Length says far more than the cap allows: 413 before parsing.
    response = bob_api.generic(
        "POST",
        "/v1/attachments",
        b"--x\r\n",
        content_type="multipart/form-data; boundary=x",
        CONTENT_LENGTH=str(10 * 1024 * 1024),
    )
    assert response.status_code == 413
    assert error(response)["code"] == "file_too_large"


def test_the_service_stops_counting_at_the_cap(
    settings: Any, workspace_a: Workspace, bob: Agent
) -> None:
    settings.MAX_ATTACHMENT_SIZE = 10

    class Lying(ContentFile):
        size = 5  # a declared size that understates the content

    with pytest.raises(AttachmentTooLarge):
        attachment_upload(
            workspace=workspace_a, actor=Actor.for_agent(bob), file=Lying(b"y" * 11, name="a")
        )
    assert not TicketAttachment.objects.exists()


def test_upload_validation(bob_api: APIClient) -> None:
    response = bob_api.post("/v1/attachments", {}, format="multipart")
    assert (response.status_code, list(error(response)["fields"])) == (400, ["file"])
    response = bob_api.post("/v1/attachments", {"file": "not a file"}, format="multipart")
    assert (response.status_code, list(error(response)["fields"])) == (400, ["file"])
    json_body = bob_api.post("/v1/attachments", {"file": "x"}, format="json")
    assert json_body.status_code == 415


def test_light_agents_upload_for_their_notes(client_for: Any, workspace_a: Workspace) -> None:
    api = client_for(light_agent(workspace_a))
    assert upload(api, b"notes", "notes.txt").status_code == 201


def test_an_idempotent_upload_is_stored_once(bob_api: APIClient) -> None:
    for _ in range(2):
        file = SimpleUploadedFile("once.txt", b"only once")
        response = bob_api.post(
            "/v1/attachments", {"file": file}, format="multipart", HTTP_IDEMPOTENCY_KEY="up-1"
        )
        assert response.status_code == 201
    assert TicketAttachment.objects.count() == 1


# --- Metadata and download ------------------------------------------------------------------


@pytest.fixture
def attachment(bob_api: APIClient) -> TicketAttachment:
    response = upload(bob_api, PDF, "Rechnung März.pdf")
    return TicketAttachment.objects.get(pk=response.json()["id"])


def test_metadata(bob_api: APIClient, attachment: TicketAttachment) -> None:
    response = bob_api.get(f"/v1/attachments/{attachment.pk}")
    assert response.status_code == 200
    assert response.json()["filename"] == "Rechnung März.pdf"
    assert response.json()["content_type"] == "application/pdf"


def test_download_streams_the_file_as_an_attachment(
    bob_api: APIClient, attachment: TicketAttachment
) -> None:
    response = bob_api.get(
        f"/v1/attachments/{attachment.pk}/download", HTTP_ACCEPT="application/octet-stream"
    )

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "private, no-store"


class SignedURLStorage(InMemoryStorage):
    """Stands in for S3Storage: bytes in memory, ``url()`` signed like boto3's."""

    querystring_auth = True

    def url(self, name: str, parameters: dict[str, str] | None = None, expire: Any = None) -> str:
        query = "&".join(f"{k}={v}" for k, v in (parameters or {}).items())
        return f"https://bucket.s3.example/{name}?X-Amz-Signature=abc&X-Amz-Expires=300&{query}"


def test_on_s3_download_redirects_to_a_short_lived_signed_url(
    bob_api: APIClient, attachment: TicketAttachment, monkeypatch: Any
) -> None:
    storage = SignedURLStorage()
    storage.save(attachment.file.name, ContentFile(PDF))
    monkeypatch.setattr(TicketAttachment._meta.get_field("file"), "storage", storage)

    response = bob_api.get(f"/v1/attachments/{attachment.pk}/download")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.netloc == "bucket.s3.example"
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == ["300"]
    assert query["ResponseContentType"] == ["application/pdf"]
    assert query["ResponseContentDisposition"][0].startswith("attachment;")


def test_a_file_missing_from_storage_is_a_404(
    bob_api: APIClient, attachment: TicketAttachment
) -> None:
    attachment.file.storage.delete(attachment.file.name)
    response = bob_api.get(f"/v1/attachments/{attachment.pk}/download")
    assert (response.status_code, error(response)["code"]) == (404, "not_found")


def test_charlie_gets_404_for_an_attachment_of_a(
    client_for: Any, charlie: Agent, attachment: TicketAttachment
) -> None:
    api = client_for(charlie)
    assert error(api.get(f"/v1/attachments/{attachment.pk}"))["code"] == "not_found"
    assert api.get(f"/v1/attachments/{attachment.pk}/download").status_code == 404
    assert api.get("/v1/attachments/999999").status_code == 404


def test_a_deleted_tickets_attachments_are_hidden(
    bob_api: APIClient, alice: Agent, ticket_a: Any, attachment: TicketAttachment
) -> None:
    TicketAttachment.objects.filter(pk=attachment.pk).update(ticket=ticket_a)
    assert bob_api.get(f"/v1/attachments/{attachment.pk}").json()["ticket"] == ticket_a.number
    ticket_delete(ticket=ticket_a, actor=Actor.for_agent(alice))
    assert bob_api.get(f"/v1/attachments/{attachment.pk}").status_code == 404
    assert bob_api.get(f"/v1/attachments/{attachment.pk}/download").status_code == 404


def test_a_deactivated_agent_cannot_upload(client_for: Any, workspace_a: Workspace) -> None:
    agent = AgentFactory(workspace=workspace_a)
    api = client_for(agent)
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    assert upload(api, b"x").status_code == 401

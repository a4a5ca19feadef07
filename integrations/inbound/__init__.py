"""The one inbound mail pipeline: raw RFC 5322 bytes + a mailbox → tickets and comments.

Every source (Microsoft Graph, IMAP, an uploaded ``.eml``, ``manage.py ingest_email``)
calls ``ingest_raw_email``, or ``ingest_many`` with a page of messages at once;
``manage.py reprocess_email`` calls ``reprocess_inbound_email``. See ``pipeline`` for the
order of the steps, ``automatic`` for what counts as automatic mail, and ``threads`` for
how a message finds its ticket.
"""

from integrations.inbound.pipeline import (
    ingest_many,
    ingest_raw_email,
    process_inbound_email,
    reprocess_inbound_email,
)

__all__ = ["ingest_many", "ingest_raw_email", "process_inbound_email", "reprocess_inbound_email"]

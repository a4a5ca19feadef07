"""The plumbing every ``/v1`` endpoint shares.

- ``errors``: the one error envelope and the exception handler that renders it;
- ``middleware``: X-Request-ID, request-scoped log context, the access log;
- ``authentication``: JWTs carrying user, workspace and agent, resolved on every request;
- ``permissions``: role rules (member, admin, owner, light agents read-only);
- ``throttling``: rate limits on django-ratelimit's cache counters, with X-RateLimit-* headers;
- ``pagination``: cursor pagination with a validated ``page_size``;
- ``parsers``: JSON bodies only, with a size cap (415 / 413);
- ``idempotency``: ``Idempotency-Key`` on POST;
- ``fields``: serializer fields every input shares (bounded ids);
- ``viewsets``: the guarded bases (``WorkspaceScopedViewSet``, ``EnqueAPIView``) and what
  ``OPTIONS`` answers;
- ``schema``: the OpenAPI AutoSchema that documents all of the above;
- ``urls``: the ``/v1`` router every app registers its viewsets on.
"""

"""Microsoft 365: MSAL sign-in and mailbox consent, Graph delta sync, and sending via Graph.

``config`` decides which app registration and redirect URIs a flow uses, ``msal_app`` keeps
each mailbox's encrypted token cache, ``oauth`` runs the PKCE auth-code flows with a
single-use ``state``, ``graph`` is the HTTP client (ImmutableId, throttling, host checks),
``sync`` and ``send`` are what the rest of the mail channel calls.
"""

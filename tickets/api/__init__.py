"""The tickets part of ``/v1``: tickets and their thread (views), saved views, the
incremental export and attachments. Routes are registered in ``enque/api/urls.py``."""

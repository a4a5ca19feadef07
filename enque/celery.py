import logging.config
import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "enque.settings")

app = Celery("enque")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@setup_logging.connect
def use_django_logging(**kwargs: object) -> None:
    # A receiver here tells Celery to leave logging alone: worker and beat log through
    # settings.LOGGING like the web process (LOG_FORMAT, LOG_LEVEL, request/task context).
    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class EnqueConfig(AppConfig):
    name = "enque"
    verbose_name = "Enque"

    def ready(self) -> None:
        from enque.schedules import install_after_migrate

        post_migrate.connect(install_after_migrate, dispatch_uid="enque.install_periodic_tasks")

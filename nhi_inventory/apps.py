from django.apps import AppConfig


class NhiInventoryConfig(AppConfig):
    name = "nhi_inventory"
    verbose_name = "NHI inventory"

from django.db import migrations

from portal.search_indexes import upper_trigram_indexes


class Migration(migrations.Migration):
    dependencies = [("nhi_inventory", "0001_initial")]

    operations = upper_trigram_indexes(
        {
            "nhi_name_upper_trgm": ("nhi_inventory_nonhumanidentity", "name"),
            "nhi_provider_upper_trgm": ("nhi_inventory_nonhumanidentity", "provider"),
            "nhi_external_id_upper_trgm": ("nhi_inventory_nonhumanidentity", "external_id"),
        }
    )

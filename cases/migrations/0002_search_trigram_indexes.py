from django.db import migrations

from portal.search_indexes import upper_trigram_indexes


class Migration(migrations.Migration):
    dependencies = [("cases", "0001_initial")]

    operations = upper_trigram_indexes({"case_title_upper_trgm": ("cases_case", "title")})

from django.db import models
from simple_history.models import HistoricalRecords


class Framework(models.Model):
    key = models.SlugField(max_length=60, unique=True, help_text="Stable id, e.g. nist-csf-2.0.")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=40)
    publisher = models.CharField(max_length=200)
    source = models.TextField()
    license = models.TextField(help_text="Attribution and licence; shown wherever the catalog is shown.")
    url = models.URLField(blank=True)
    loaded_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords()

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


class ControlKind(models.TextChoices):
    FUNCTION = "function", "Function"
    CATEGORY = "category", "Category"
    SUBCATEGORY = "subcategory", "Subcategory"
    RISK = "risk", "Risk"


class Control(models.Model):
    framework = models.ForeignKey(Framework, on_delete=models.PROTECT, related_name="controls")
    ref_id = models.CharField(max_length=40)
    kind = models.CharField(max_length=16, choices=ControlKind.choices)
    title = models.CharField(max_length=300, blank=True)
    statement = models.TextField()
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    position = models.PositiveIntegerField(default=0, help_text="Order within the catalog file.")
    history = HistoricalRecords()

    class Meta:
        ordering = ("framework_id", "position")
        constraints = (models.UniqueConstraint(fields=("framework", "ref_id"), name="control_ref_unique"),)

    def __str__(self) -> str:
        return f"{self.ref_id} {self.title}".strip()

from rest_framework import serializers

from frameworks.models import Control, Framework


class FrameworkSerializer(serializers.ModelSerializer[Framework]):
    # Plain text: the URL may be empty, and "" is no valid `format: uri`.
    url = serializers.CharField(read_only=True, help_text="The publisher's page, or empty.")

    class Meta:
        model = Framework
        fields = ("id", "key", "name", "version", "publisher", "source", "license", "url", "loaded_at")
        read_only_fields = fields


class ControlSerializer(serializers.ModelSerializer[Control]):
    framework_key: serializers.SlugRelatedField[Framework] = serializers.SlugRelatedField(
        source="framework", slug_field="key", read_only=True
    )

    class Meta:
        model = Control
        fields = (
            "id",
            "framework",
            "framework_key",
            "ref_id",
            "kind",
            "title",
            "statement",
            "parent",
            "position",
        )
        read_only_fields = fields

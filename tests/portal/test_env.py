"""EnvReader: every malformed variable stops start-up with a message that names it."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.env import EnvReader


def reader(**environ: str) -> EnvReader:
    return EnvReader(environ)


# --- secret / NAME_FILE -------------------------------------------------------------------------------------


def test_it_reads_a_secret_from_the_variable():
    assert reader(API_TOKEN="  s3cret-value  ").secret("API_TOKEN") == "s3cret-value"


def test_it_reads_a_secret_from_the_file_named_by_name_file(tmp_path):
    secret_file = tmp_path / "api_token"
    secret_file.write_text("from-the-file\n", encoding="utf-8")

    assert reader(API_TOKEN_FILE=str(secret_file)).secret("API_TOKEN") == "from-the-file"


def test_it_refuses_both_name_and_name_file(tmp_path):
    secret_file = tmp_path / "api_token"
    secret_file.write_text("from-the-file", encoding="utf-8")

    with pytest.raises(ImproperlyConfigured, match=r"API_TOKEN or API_TOKEN_FILE, not both"):
        reader(API_TOKEN="direct", API_TOKEN_FILE=str(secret_file)).secret("API_TOKEN")


def test_it_refuses_an_unreadable_secret_file(tmp_path):
    missing = tmp_path / "does-not-exist"

    with pytest.raises(ImproperlyConfigured, match=r"API_TOKEN_FILE=.*cannot be read"):
        reader(API_TOKEN_FILE=str(missing)).secret("API_TOKEN")


def test_it_refuses_an_empty_secret_file(tmp_path):
    secret_file = tmp_path / "api_token"
    secret_file.write_text("  \n", encoding="utf-8")

    with pytest.raises(ImproperlyConfigured, match=r"API_TOKEN_FILE=.* is empty"):
        reader(API_TOKEN_FILE=str(secret_file)).secret("API_TOKEN")


def test_it_refuses_a_directory_as_secret_file(tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"API_TOKEN_FILE=.*cannot be read"):
        reader(API_TOKEN_FILE=str(tmp_path)).secret("API_TOKEN")


def test_an_unset_secret_is_none():
    assert reader().secret("API_TOKEN") is None


def test_a_variable_is_set_when_it_has_a_value():
    assert reader(ALLOWED_HOSTS="portal.example.com").is_set("ALLOWED_HOSTS")


def test_a_name_file_alone_does_not_count_as_set(tmp_path):
    # text() and items() never read NAME_FILE: counting it would let them fall back to their defaults.
    hosts = tmp_path / "hosts"
    hosts.write_text("portal.example.com", encoding="utf-8")

    assert not reader(ALLOWED_HOSTS_FILE=str(hosts)).is_set("ALLOWED_HOSTS")


def test_a_blank_variable_does_not_count_as_set():
    assert not reader(API_TOKEN="   ").is_set("API_TOKEN")


# --- flag ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), ("on", True), ("no", False), ("0", False)]
)
def test_it_reads_a_boolean(raw, expected):
    assert reader(DEBUG=raw).flag("DEBUG", not expected) is expected


def test_an_unset_boolean_takes_the_default():
    assert reader().flag("DEBUG", True) is True


def test_it_refuses_a_malformed_boolean():
    with pytest.raises(ImproperlyConfigured, match=r"^DEBUG='ture' is not a boolean"):
        reader(DEBUG="ture").flag("DEBUG", False)


# --- integer ------------------------------------------------------------------------------------------------


def test_it_reads_a_whole_number():
    assert reader(EMAIL_PORT=" 587 ").integer("EMAIL_PORT", 25) == 587


def test_it_refuses_a_malformed_whole_number():
    with pytest.raises(ImproperlyConfigured, match=r"^EMAIL_PORT='25x' is not a whole number"):
        reader(EMAIL_PORT="25x").integer("EMAIL_PORT", 25)


def test_it_refuses_a_whole_number_below_the_minimum():
    with pytest.raises(ImproperlyConfigured, match=r"^EMAIL_PORT=0 is below the minimum of 1"):
        reader(EMAIL_PORT="0").integer("EMAIL_PORT", 25, minimum=1)


# --- items --------------------------------------------------------------------------------------------------


def test_it_reads_a_comma_separated_list():
    assert reader(ALLOWED_HOSTS="a.example, b.example").items("ALLOWED_HOSTS", []) == [
        "a.example",
        "b.example",
    ]


def test_an_unset_list_is_a_copy_of_the_default():
    default = ["localhost"]
    items = reader().items("ALLOWED_HOSTS", default)

    items.append("changed")
    assert default == ["localhost"]


def test_it_refuses_a_list_with_an_empty_entry():
    with pytest.raises(
        ImproperlyConfigured, match=r"^ALLOWED_HOSTS='a.example,,b.example' has an empty entry"
    ):
        reader(ALLOWED_HOSTS="a.example,,b.example").items("ALLOWED_HOSTS", [])


def test_it_refuses_a_list_with_a_trailing_comma():
    with pytest.raises(ImproperlyConfigured, match=r"^ALLOWED_HOSTS="):
        reader(ALLOWED_HOSTS="a.example,").items("ALLOWED_HOSTS", [])


# --- choice -------------------------------------------------------------------------------------------------


def test_it_reads_a_choice():
    assert reader(PORTAL_ENV="production").choice(
        "PORTAL_ENV", "development", ("development", "production")
    ) == ("production")


def test_it_refuses_a_value_outside_the_choices():
    with pytest.raises(
        ImproperlyConfigured, match=r"^PORTAL_ENV='prod' is not one of: development, production"
    ):
        reader(PORTAL_ENV="prod").choice("PORTAL_ENV", "development", ("development", "production"))


# --- text ---------------------------------------------------------------------------------------------------


def test_a_blank_text_variable_takes_the_default():
    assert reader(LOG_LEVEL="").text("LOG_LEVEL", "INFO") == "INFO"

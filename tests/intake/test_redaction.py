"""Free text loses whatever is shaped like a credential, by the findings import's own rule."""

import pytest

from findings.ingest import scrub
from intake.redaction import masked, reference_without_secrets

SAMPLES = [
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in .env",
    "token ghp_x7Kq2M9vR4tY8wB1nC5eD3fG6hJ0kL2pQ9sZ was pasted",
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "payments-api-bot and ci-deployer are fine; CASE-000012 too",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_it_masks_exactly_as_the_findings_import_does(text: str) -> None:
    assert masked(text) == scrub(text, secret="", preview="")


def test_it_masks_a_key_however_long_the_text_around_it() -> None:
    # The import cuts its context at 300 characters; a summary is kept whole, and masked whole.
    text = "word " * 100 + "AKIAZ7Q3EXAMPLE4K2PB"
    assert masked(text).endswith("[masked, 20 chars]")


def test_it_leaves_words_and_identity_names_readable() -> None:
    text = "Rotate the key of payments-api-bot (owned by Payments) before Friday."
    assert masked(text) == text


def test_it_drops_the_credentials_of_a_url_in_the_text() -> None:
    assert masked("clone https://x-access-token:abc@github.com/acme/x") == "clone https://github.com/acme/x"


@pytest.mark.parametrize(
    ("reference", "kept"),
    [
        ("chat-8812", "chat-8812"),
        ("https://chat.example.com/c/8812", "https://chat.example.com/c/8812"),
        ("https://user:pw@chat.example.com:8443/c/1?token=abc#x", "https://chat.example.com:8443/c/1"),
        (
            "https://chat.example.com:99999/c/AKIAZ7Q3EXAMPLE4K2PB",
            "https://chat.example.com:[masked, 28 chars]",
        ),
    ],
)
def test_it_keeps_a_conversation_reference_without_what_a_url_may_carry_secretly(
    reference: str, kept: str
) -> None:
    assert reference_without_secrets(reference) == kept

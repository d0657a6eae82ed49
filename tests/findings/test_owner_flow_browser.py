"""An owner answers in a real browser (headless Chromium via Selenium) against the live server.

Skipped where Chromium, chromedriver or Selenium are missing, so `make test` passes on any machine; CI sets
REQUIRE_BROWSER=1, which turns that skip into a failure, so the browser tests cannot silently stop running.
"""

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from findings.links import answer_link_issue
from findings.models import AnswerLink, Exposure, ExposureState
from tests.findings.conftest import MakeExposure

# Debian's packages by default; CHROMIUM_BINARY / CHROMEDRIVER_BINARY point elsewhere (e.g. Ubuntu's names).
CHROMIUM = os.environ.get("CHROMIUM_BINARY") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = (
    os.environ.get("CHROMEDRIVER_BINARY") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
)


def _missing() -> list[str]:
    missing = [name for name in (CHROMIUM, CHROMEDRIVER) if not os.access(name, os.X_OK)]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package (pip install -e '.[dev]')")
    return missing


if _missing():
    _reason = f"browser tests need {', '.join(_missing())} (apt-get install chromium chromium-driver)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(f"REQUIRE_BROWSER=1 but {_reason}", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

# Imported only once we know Selenium is there (above), hence below the module-level skip.
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 15


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver, live_server: Any) -> Iterator[WebDriver]:
    """The shared browser, with no session left over from the previous test."""
    browser.delete_all_cookies()
    yield browser
    browser.delete_all_cookies()


def wait_for_text(browser: WebDriver, text: str) -> None:
    """Wait until the page's main content shows `text` (it copes with the page being replaced meanwhile)."""
    try:
        # While a page is being replaced Chromium may answer for a node of the old one ("Node with given
        # id does not belong to the document"), not only with a stale reference: both mean "look again".
        WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(
            expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "main"), text)
        )
    except TimeoutException:
        shown = browser.find_element(By.TAG_NAME, "body").text
        raise AssertionError(
            f"{text!r} never appeared at {browser.current_url}; the page says: {shown!r}"
        ) from None


def click(browser: WebDriver, by: str, value: str) -> None:
    """Find and click, again if the page was being replaced under the first try."""

    def clicked(driver: WebDriver) -> bool:
        driver.find_element(by, value).click()
        return True

    WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(WebDriverException,)).until(clicked)


def sign_in(browser: WebDriver, base_url: str, *, username: str, password: str) -> None:
    browser.get(f"{base_url}{reverse('findings:owner_list')}")
    wait_for_text(browser, "Sign in")
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(password)
    click(browser, By.CSS_SELECTOR, "main button[type=submit]")
    wait_for_text(browser, "Leaked secrets awaiting your answer")


def choose_answer(browser: WebDriver, label: str) -> None:
    """Pick an answer by its visible label, as a person would."""
    click(browser, By.XPATH, f"//fieldset//label[normalize-space()='{label}']")


def test_an_owner_signs_in_and_confirms_an_exposure(
    page: WebDriver, live_server: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure = make_exposure(payments_identity, locations=2)

    sign_in(page, live_server.url, username="owner", password="pw")
    wait_for_text(page, exposure.preview)
    click(page, By.LINK_TEXT, f"Answer for exposure #{exposure.pk}")
    wait_for_text(page, "Your answer")
    choose_answer(page, "Ours, and real")
    click(page, By.XPATH, "//button[normalize-space()='Send answer']")
    wait_for_text(page, "Nothing awaits your answer.")

    assert exposure.preview in page.find_element(By.CSS_SELECTOR, ".messages").text
    assert exposure.preview not in page.find_element(By.TAG_NAME, "main").text
    exposure.refresh_from_db()
    assert exposure.state == ExposureState.CONFIRMED
    row = exposure.history.filter(history_change_reason__startswith="owner answer:").get()
    assert (row.state, row.history_user) == (ExposureState.CONFIRMED, owner)


def test_an_owner_answers_false_positive_through_an_emailed_link(
    page: WebDriver, live_server: Any, owner: Any, payments_identity: Any, make_exposure: MakeExposure
) -> None:
    exposure: Exposure = make_exposure(payments_identity)
    token = answer_link_issue(exposure=exposure, user=owner)
    path = reverse("findings:answer_link", kwargs={"exposure_id": exposure.pk, "token": token})

    page.get(f"{live_server.url}{path}")
    wait_for_text(page, exposure.preview)
    choose_answer(page, "False positive")
    page.find_element(By.ID, "id_note").send_keys("A documented example key from the SDK's README.")
    click(page, By.XPATH, "//button[normalize-space()='Send answer']")
    wait_for_text(page, "Answer recorded")

    exposure.refresh_from_db()
    assert (exposure.state, exposure.answered_by) == (ExposureState.FALSE_POSITIVE, owner)
    assert exposure.answer_note == "A documented example key from the SDK's README."
    assert exposure.history.filter(history_user=owner, state=ExposureState.FALSE_POSITIVE).exists()
    assert AnswerLink.objects.get().used_at is not None
    page.get(f"{live_server.url}{reverse('findings:owner_list')}")
    wait_for_text(page, "Sign in")
    assert page.current_url.startswith(f"{live_server.url}{reverse('login')}")

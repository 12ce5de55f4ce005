"""The web page at ``/`` in a real browser against the real service (gateway, worker, Redis).

Playwright's Python package drives Debian's Chromium (``/usr/bin/chromium``, or
``IMGENHANCE_TEST_CHROMIUM``); playwright's own browser download is never used. Without
a Chromium these tests skip, saying so; ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import images
from tests.support.services import Service

CHROMIUM = os.environ.get("IMGENHANCE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set IMGENHANCE_TEST_CHROMIUM): "
        "the web page's browser tests skip",
        allow_module_level=True,
    )

# A closed network: Chromium must not try to reach Google's hosts at start.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JOB_TIMEOUT_MS = 30_000  # ms: the longest a small job may take on a loaded 2-core machine
KEY_STORAGE = "imgenhance.apiKey"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """A fresh browser tab (own sessionStorage) that records what the page asked for
    and any script error or refused load."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(accept_downloads=True)
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if "Content Security Policy" in message.text else None,
        )

    def open(self, service: Service) -> Page:
        self.page.goto(f"{service.base_url}/")
        return self.page


@pytest.fixture
def visit(browser: Browser) -> Iterator[Visit]:
    tab = Visit(browser)
    yield tab
    tab.context.close()
    assert not tab.errors, tab.errors


def ready(page: Page) -> None:
    expect(page.locator("#task")).to_be_enabled(timeout=JOB_TIMEOUT_MS)


def upload(page: Page, tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    page.set_input_files("#files", str(path))
    page.click("#start")


def super_resolve_x2(page: Page, tmp_path: Path, name: str = "small.png") -> None:
    ready(page)
    page.select_option("#task", "super-resolve")
    page.select_option("#scale", "2")
    upload(page, tmp_path, name, images.png(images.photo(24, 20)))


def loaded(page: Page, selector: str) -> int:
    """Wait until the image is shown and decoded; its natural width."""
    image = page.locator(selector)
    expect(image).to_be_visible(timeout=JOB_TIMEOUT_MS)
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())
    width: int = image.evaluate("el => el.naturalWidth")
    return width


def test_upload_shows_the_result_and_downloads_the_api_bytes(service: Service, visit: Visit, tmp_path: Path) -> None:
    page = visit.open(service)
    super_resolve_x2(page, tmp_path)
    job = page.locator(".job").first
    assert loaded(page, ".job .compare .after") == 48
    assert loaded(page, ".job .compare .before") == 24
    assert job.locator("progress").evaluate("el => el.value") == 1
    with page.expect_download() as started:
        job.locator(".download").click()
    download = started.value
    job_id = job.get_attribute("data-job-id")
    with service.client() as client:
        from_api = client.get(f"/v1/jobs/{job_id}/result")
        params = client.get(f"/v1/jobs/{job_id}").json()["params"]
    assert Path(download.path()).read_bytes() == from_api.content
    assert download.suggested_filename == "small-x2.png"
    assert params["scale"] == 2 and params["model"] == "sr-compact-x2"
    assert images.open_image(from_api.content).size == (48, 40)
    foreign = [url for url in visit.requests if not url.startswith((service.base_url, "blob:", "data:"))]
    assert not foreign, f"the page reached another host: {foreign}"


def test_before_after_slider_moves_with_the_keyboard(service: Service, visit: Visit, tmp_path: Path) -> None:
    page = visit.open(service)
    super_resolve_x2(page, tmp_path)
    loaded(page, ".job .compare .after")
    slider = page.locator(".job .compare-slider")
    view = page.locator(".job .compare-view")
    expect(slider).to_have_accessible_name("Before ◂ ▸ after")
    slider.focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expect(slider).to_have_value("55")
    assert view.evaluate("el => el.style.getPropertyValue('--pos')") == "55%"
    page.keyboard.press("Home")
    expect(slider).to_have_value("0")
    expect(slider).to_have_attribute("aria-valuetext", "0% before, 100% after")
    assert view.evaluate("el => el.style.getPropertyValue('--pos')") == "0%"


def test_a_text_file_shows_the_apis_error(service: Service, visit: Visit, tmp_path: Path) -> None:
    text = b"not a picture, only words\n"
    with service.client() as client:
        refused = client.post("/v1/jobs/super-resolve", files={"image": ("notes.png", text)}, data={"scale": "2"})
    assert refused.status_code == 415
    page = visit.open(service)
    ready(page)
    page.select_option("#scale", "2")
    upload(page, tmp_path, "notes.png", text)
    error = page.locator(".job .job-error")
    expect(error).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(error).to_have_text(refused.json()["detail"])
    expect(error).to_have_attribute("role", "alert")
    expect(page.locator(".job .download")).to_be_hidden()


def generate(page: Page) -> str | None:
    """Start the form's generate job and wait for its picture; the job's id."""
    page.click("#start")
    loaded(page, ".job .single img")
    return page.locator(".job").first.get_attribute("data-job-id")


def test_generate_with_seed_class_and_psi_shows_a_grid(service: Service, visit: Visit) -> None:
    page = visit.open(service)
    ready(page)
    page.select_option("#task", "generate")
    page.fill("#seed", "7")
    page.fill("#n", "4")
    page.select_option("#class", "3")
    page.locator("#truncation").fill("0.7")
    expect(page.locator("#truncation-value")).to_have_text("0.7")
    job_id = generate(page)
    with service.client() as client:
        view = client.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "succeeded" and view["result"]["content_type"] == "image/png"
    params = view["params"]
    assert (params["seed"], params["n"], params["label"], params["truncation"]) == (7, 4, 3, 0.7)
    expect(page.locator(".job .download")).to_have_attribute("download", f"{view['model']}-seed7.png")


def test_generate_interpolation_preview_is_an_animated_webp(service: Service, visit: Visit) -> None:
    page = visit.open(service)
    ready(page)
    page.select_option("#task", "generate")
    expect(page.locator("#to-seed")).to_be_hidden()
    page.check("#interpolate")
    page.fill("#n", "2")
    page.fill("#seed", "1")
    page.fill("#to-seed", "2")
    page.fill("#steps", "4")
    job_id = generate(page)
    with service.client() as client:
        view = client.get(f"/v1/jobs/{job_id}").json()
        frames = images.open_image(client.get(view["links"]["result"]).content)
    assert view["params"]["interpolate"] == {"to_seed": 2, "steps": 4}
    assert view["result"]["content_type"] == "image/webp" and getattr(frames, "n_frames", 1) == 4
    expect(page.locator(".job .download")).to_have_attribute("download", f"{view['model']}-seed1-to2.webp")


def test_api_key_is_asked_once_and_kept_in_session_storage(
    make_service: Callable[..., Service], visit: Visit, tmp_path: Path
) -> None:
    secured = make_service(env={"IMGENHANCE_API_KEYS": "k"})
    with secured.client() as client:  # the page itself needs no key; the API does
        assert [client.get(path).status_code for path in ("/", "/web/app.js", "/v1/models")] == [200, 200, 401]
    page = visit.open(secured)
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible(timeout=JOB_TIMEOUT_MS)  # GET /v1/models answered 401
    page.fill("#api-key", "k")
    page.press("#api-key", "Enter")
    ready(page)
    super_resolve_x2(page, tmp_path)
    loaded(page, ".job .compare .after")
    assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == "k"
    assert dialog.get_attribute("data-asked") == "1"  # once, for the models list, the submit and the polls

    page.reload()  # the same tab: the key is still there, nothing is asked
    ready(page)
    assert dialog.get_attribute("data-asked") is None

    page.evaluate(f"sessionStorage.setItem('{KEY_STORAGE}', 'wrong')")
    page.reload()
    expect(dialog).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#key-reason")).to_contain_text("refused")
    page.fill("#api-key", "k")
    page.click("#key-ok")
    ready(page)
    assert page.evaluate(f"sessionStorage.getItem('{KEY_STORAGE}')") == "k"

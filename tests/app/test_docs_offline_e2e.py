"""/docs and /redoc work on a host without internet access: every script, stylesheet
and icon the pages name is served by the gateway itself (``app/docs_ui.py``)."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.services import Service

# Content types each kind of asset may come with, and the smallest believable size.
ASSET_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}
MIN_BYTES = {".js": 100_000, ".css": 10_000, ".png": 500}


class Links(HTMLParser):
    """Every ``src=`` and ``href=`` in a page, and any URL its inline scripts name."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline.append(data)


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(("page", "expected_assets"), [("/docs", 3), ("/redoc", 2)])
def test_docs_page_names_only_local_assets_and_each_is_served(
    service: Service, page: str, expected_assets: int
) -> None:
    with service.client() as client:
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        found = links(r.text)
        assert len(found.urls) == expected_assets, found.urls  # swagger: css, icon, js; redoc: icon, js
        for url in found.urls:
            parts = urlsplit(url)
            assert not parts.scheme and not parts.netloc, f"{page} loads {url} from another host"
            assert url.startswith("/static/docs/"), url
            asset = client.get(urljoin(service.base_url, url))
            suffix = url[url.rfind(".") :]
            assert asset.status_code == 200, url
            assert asset.headers["content-type"].split(";")[0] in ASSET_TYPES[suffix], (url, asset.headers)
            assert len(asset.content) >= MIN_BYTES[suffix], (url, len(asset.content))
        for script in found.inline:
            assert "http://" not in script and "https://" not in script and "//cdn" not in script, script
            assert "'/openapi.json'" in script or page == "/redoc"


def test_redoc_reads_the_local_schema_without_web_fonts(service: Service) -> None:
    with service.client() as client:
        html = client.get("/redoc").text
        assert 'spec-url="/openapi.json"' in html
        assert "fonts.googleapis.com" not in html
        assert client.get("/openapi.json").json()["info"]["title"] == "imgenhance"


def test_swagger_ui_never_asks_the_online_validator(service: Service) -> None:
    with service.client() as client:
        html = client.get("/docs").text
    assert '"validatorUrl": null' in html


def test_oauth2_redirect_page_is_local(service: Service) -> None:
    with service.client() as client:
        r = client.get("/docs/oauth2-redirect")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not [url for url in links(r.text).urls if urlsplit(url).netloc]


def test_docs_assets_are_not_in_the_api_schema_and_unknown_ones_are_404_problems(service: Service) -> None:
    with service.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
        missing = client.get("/static/docs/nothing-here.js")
        escape = client.get("/static/docs/..%2f..%2fapp%2fmain.py")
    assert not [p for p in paths if p.startswith(("/docs", "/redoc", "/static"))]
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert escape.status_code == 404

"""The web page's files over HTTP, without a browser: what ``/`` and ``/web/...`` answer,
that the page names only files of this host, and that an installed copy carries them."""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tests.support.services import Service

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "app" / "web"
TYPES = {".js": "text/javascript", ".css": "text/css"}


class Refs(HTMLParser):
    """Every ``src=`` and ``href=`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_page_is_html_that_only_this_host_may_feed(service: Service) -> None:
    with service.client() as client:
        r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache" and r.headers["x-content-type-options"] == "nosniff"
    policy = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"  # no inline script or style


def test_page_names_only_local_files_and_each_is_served_with_its_type(service: Service) -> None:
    with service.client() as client:
        page = client.get("/").text
        refs = Refs()
        refs.feed(page)
        for url in refs.urls:
            parts = urlsplit(url)
            assert parts.scheme in ("", "data") and not parts.netloc, f"the page loads {url} from another host"
            if parts.scheme == "data":
                continue
            r = client.get(urljoin(f"{service.base_url}/", url))
            assert r.status_code == 200, url
            if suffix := Path(parts.path).suffix:
                assert r.headers["content-type"].split(";")[0] == TYPES[suffix], (url, r.headers)
                assert r.headers["cache-control"] == "no-cache" and r.headers["etag"]
    assert {"web/app.js", "web/app.css", "docs"} <= set(refs.urls)
    assert "<script>" not in page and " style=" not in page  # the policy forbids inline code


def test_assets_revalidate_with_their_etag(service: Service) -> None:
    with service.client() as client:
        first = client.get("/web/app.js")
        again = client.get("/web/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content


def test_script_calls_only_relative_urls(service: Service) -> None:
    with service.client() as client:
        script = client.get("/web/app.js").text
    assert not re.search(r"https?://|//cdn", script)
    assert "sessionStorage" in script and "localStorage" not in script  # the key lives as long as the tab


def test_unknown_and_escaping_paths_are_404_problems(service: Service) -> None:
    with service.client() as client:
        missing = client.get("/web/nothing.js")
        escape = client.get("/web/..%2froutes%2fweb.py")
        listing = client.get("/web/")
        paths = client.get("/openapi.json").json()["paths"]
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert escape.status_code == 404 and listing.status_code == 404
    assert "/" not in paths and not [p for p in paths if p.startswith("/web")]


def test_every_web_file_is_package_data() -> None:
    """``pip install .`` (the Docker images) copies only what package-data names."""
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["app"]
    files = [p.relative_to(REPO / "app").as_posix() for p in WEB.iterdir()]
    assert {"index.html", "app.js", "app.css"} <= {Path(f).name for f in files}
    assert all(any(fnmatch(f, g) for g in globs) for f in files), (files, globs)

"""The committed HTML reports in a real browser: headless Chromium renders each page to a
screenshot with no console message, and every image and link on it resolves."""

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["reports/conformance/summary.html", "reports/bench/summary.html"]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class _References(HTMLParser):
    """The src of every image and the href of every link."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src") or "")
        elif tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def _local(reference: str) -> bool:
    parsed = urlparse(reference)
    return not parsed.scheme and not parsed.netloc and not reference.startswith("#")


@pytest.mark.parametrize("page", PAGES)
def test_every_image_and_link_resolves(page):
    path = ROOT / page
    refs = _References()
    refs.feed(path.read_text())
    assert refs.images, f"{page}: no image"
    missing = [r for r in refs.images + refs.links if not r or (_local(r) and not (path.parent / r).exists())]
    assert not missing, f"{page}: broken references {missing}"


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (.ci/run installs Debian's chromium)")
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_in_headless_chromium_without_console_messages(page, tmp_path):
    """The pages carry no script, so any console message (an error, a blocked load) is a defect.
    $CONV3D_SCREENSHOTS names a folder to keep the screenshots in."""
    shot = tmp_path / (Path(page).parent.name + ".png")
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1400,2400", f"--screenshot={shot}", "--enable-logging=stderr",
                           "--v=0", (ROOT / page).as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert not console, f"{page}: {console}"
    assert shot.stat().st_size > 20_000, f"{page}: the screenshot is nearly blank"
    if os.environ.get("CONV3D_SCREENSHOTS"):
        keep = Path(os.environ["CONV3D_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / shot.name)

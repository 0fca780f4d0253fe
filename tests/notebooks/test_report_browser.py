"""The run report in a real browser: headless Chromium loads report.html, every image loads,
the console stays clean, and a screenshot is saved next to the report.

Uses Chromium's command line only (no extra Python package): ``--dump-dom`` prints the page
after its load event, ``--enable-logging=stderr`` prints console messages as ``CONSOLE`` lines,
and ``--screenshot`` writes a PNG. Flags: https://developer.chrome.com/docs/chromium/headless
and https://www.chromium.org/for-testers/enable-logging/. Skipped, with a plain message, when
Chromium is not installed (``.ci/run`` installs Debian's ``chromium`` package).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.notebooks import report_fixture
from utils import report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]

# Injected into a copy of the page: records console errors, uncaught errors and failed resource loads
# (capture phase), and each image's naturalWidth once the page has loaded, into a data attribute.
PROBE = """<script>
(function(){var seen=[];var err=console.error;
console.error=function(){seen.push('console.error: '+Array.prototype.join.call(arguments,' '));err.apply(console,arguments)};
window.addEventListener('error',function(e){var t=e.target;seen.push(t&&t.tagName?('failed to load '+t.tagName+' '+(t.src||'').slice(0,60)):('error: '+e.message))},true);
window.addEventListener('load',function(){document.documentElement.setAttribute('data-probe',JSON.stringify(
{errors:seen,images:Array.prototype.map.call(document.images,function(i){return {alt:i.alt,width:i.naturalWidth}})}))});
})();
</script>"""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed, so the report was not checked in a browser "
           "(install Debian's package: apt-get install chromium)",
)


def _chromium(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A run folder with report.html rendered from a results.json that fills every section."""
    folder = tmp_path_factory.mktemp("runs") / "20260101T000000Z"
    folder.mkdir()
    results = report_fixture.results()
    (folder / "results.json").write_text(json.dumps(results, indent=2))
    (folder / "report.html").write_text(report.render_html(results))
    (folder.parent / "index.html").write_text(report.render_index(folder.parent))
    return folder


def test_report_loads_in_chromium_with_images_and_no_console_errors(run_folder):
    page = (run_folder / "report.html").read_text()
    probed = run_folder / "report.probe.html"
    probed.write_text(page.replace("<head>", "<head>" + PROBE, 1))
    done = _chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    match = re.search(r'data-probe="([^"]*)"', done.stdout)
    assert match, "the page never fired its load event:\n" + done.stdout[:500]
    probe = json.loads(html.unescape(match.group(1)))
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert probe["errors"] == [] and console == [], (probe["errors"], console)
    assert len(probe["images"]) >= 2  # the loss curve and the sweep plot
    assert all(image["width"] > 0 for image in probe["images"]), probe["images"]

    shot = run_folder / "report.png"
    done = _chromium("--window-size=1100,4200", f"--screenshot={shot}", (run_folder / "report.html").as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]


def test_comparison_page_links_each_run(run_folder):
    index = run_folder.parent / "index.html"
    done = _chromium("--dump-dom", index.as_uri())
    assert f'href="{run_folder.name}/report.html"' in done.stdout and "Workshop runs" in done.stdout

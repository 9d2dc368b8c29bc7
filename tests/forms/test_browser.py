"""Real browser: JupyterLab 4 and Notebook 7 in headless Chromium run notebooks/forms.ipynb; the
test fills the create-task form (a lookup picked by search included), submits, and finds the task
in the sandbox.

One Jupyter server serves both frontends (the jupyterlab app also serves Notebook 7's
/notebooks pages) and one Chromium visits them in turn, in a single test: as two parametrized
tests, pytest-xdist could run them on two workers, each paying for its own server and browser.

Screenshots land in test-artifacts/{lab,notebook7}-forms-*.png.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.forms import SandboxReader, unique
from tests.support.waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} is not installed (apt-get install chromium)",
    ),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FRONTENDS = {  # notebook URL path under the server, for a notebook in the frontend's own folder
    "lab": "/lab/tree/lab/forms.ipynb",
    "notebook7": "/notebooks/notebook7/forms.ipynb",
}
LAB_OPTIONS = [
    "--LabApp.news_url=",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]


@dataclass
class Jupyter:
    base: str
    token: str

    def url(self, app: str) -> str:
        return f"{self.base}{FRONTENDS[app]}?token={self.token}"


@pytest.fixture
def jupyter(tmp_path, sandbox_handle):
    """One Jupyter server (JupyterLab 4 and Notebook 7) on a free loopback port, serving a temp dir
    with a copy of the notebook per frontend (each gets its own kernel and saved file), the kernel
    pointed at the test's sandbox through environment variables."""
    for module in ("jupyterlab", "notebook"):
        pytest.importorskip(module, reason=f"{module} is not installed (the `lab` extra)")
    work = tmp_path / "work"
    for app in FRONTENDS:
        (work / app).mkdir(parents=True)
        shutil.copy(ROOT / "notebooks" / "forms.ipynb", work / app / "forms.ipynb")
    port, token = free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "D365NB_SANDBOX_URL": sandbox_handle.url,
        "D365NB_SANDBOX_TOKEN": sandbox_handle.token,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"),
    }
    # No "Jupyter news?" toast over the forms.
    notification = (
        tmp_path
        / "settings"
        / "@jupyterlab"
        / "apputils-extension"
        / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - the server writes to it until teardown
    process = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", *LAB_OPTIONS,
        ],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    # One client for all polls: a bare httpx.get builds an SSL context each time (~25 ms of CPU),
    # which at this poll rate took a core from the starting server.
    status = httpx.Client(base_url=base, params={"token": token}, timeout=2)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"jupyter exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        try:
            return status.get("/api/status").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 90, "jupyterlab to start")
    finally:
        status.close()
    yield Jupyter(base, token)
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


IDLE = ".jp-Notebook-ExecutionIndicator[data-status='idle']"


def wait_idle(page, timeout: float = 90_000) -> None:
    page.wait_for_selector(IDLE, state="attached", timeout=timeout)
    if page.locator(".jp-StatusBar-Widget").count():  # JupyterLab's status bar: kernel status
        page.get_by_text("| Idle").first.wait_for(timeout=timeout)


def run_all(page) -> None:
    """Run > Run All Cells, retried until the first cell starts: the menu command is a no-op while
    the notebook's kernel session is still connecting, which no indicator shows reliably."""
    wait_idle(page)
    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _attempt in range(6):
        news = page.locator(".jp-Notification-Toast button", has_text="No")
        if news.count():
            news.first.click()  # the "Jupyter news?" toast would cover the forms
        page.click(".jp-Notebook")
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.click("li[data-command='runmenu:run-all']")
        try:
            started.first.wait_for(state="attached", timeout=10_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError("Run All never started the notebook")


def test_create_task_form_in_the_browser(jupyter, sandbox_handle):
    """Both frontends in turn, in one browser; a failure in one still lets the other run, and
    the test's failure names every frontend that failed."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    reader = SandboxReader(sandbox_handle)
    ARTIFACTS.mkdir(exist_ok=True)
    failures: dict[str, Exception] = {}
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # One context: both frontends load the same widget and extension assets from its cache.
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        try:
            for app in FRONTENDS:
                try:
                    create_task_in(context, app, jupyter.url(app), reader)
                except Exception as error:  # noqa: BLE001 - reported below, with the frontend
                    failures[app] = error
        finally:
            browser.close()
    if failures:
        summary = "; ".join(f"{app}: {error!r}" for app, error in failures.items())
        raise AssertionError(f"the create-task form failed in {summary}") from next(
            iter(failures.values())
        )


def create_task_in(context, app: str, url: str, reader: SandboxReader) -> None:
    """Run the notebook in one frontend, create a task through its form, and find the task."""
    account_name = unique("Browser Account")
    account_id = reader.create("accounts", {"name": account_name})
    subject = unique("Browser task")
    page = context.new_page()
    try:
        page.goto(url, timeout=90_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
        run_all(page)
        form = page.locator(".d365nb-form-create")
        form.wait_for(timeout=90_000)
        wait_idle(page)
        form.scroll_into_view_if_needed()
        # Let two frames paint the scrolled-to cells first: a Notebook 7 screenshot taken right
        # after the scroll once showed an empty notebook (its cells render lazily).
        page.evaluate(
            "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
        )
        page.screenshot(path=str(ARTIFACTS / f"{app}-forms-1-run-all.png"))
        fill_and_submit(form, app, subject, account_name)
        check_other_forms(page, app)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / f"{app}-forms-failure.png"))
        raise
    finally:
        page.close()  # its renderer would keep working while the next frontend loads

    tasks = reader.query("tasks", filter=f"subject eq '{subject}'")
    assert len(tasks) == 1
    task = tasks[0]
    assert task["_regardingobjectid_value"] == account_id
    assert task["percentcomplete"] == 40
    assert task["scheduledend"].startswith("2026-12-24")


def fill_and_submit(form, app: str, subject: str, account_name: str) -> None:
    form.locator(".d365nb-field-subject input").fill(subject)
    form.locator(".d365nb-field-scheduledend input[placeholder='mm/dd/yyyy']").fill("12/24/2026")
    percent = form.locator(".d365nb-field-percentcomplete")
    percent.locator("input").fill("150")  # flagged inline as typed, before any submit
    percent.locator(".d365nb-error", has_text="above the maximum 100").wait_for(timeout=30_000)
    percent.screenshot(path=str(ARTIFACTS / f"{app}-forms-2a-inline-error.png"))
    percent.locator("input").fill("40")
    percent.locator(".d365nb-error").wait_for(state="detached", timeout=30_000)
    picker = form.locator(".d365nb-picker-regardingobjectid")
    picker.locator("select").first.select_option(label="Account")
    picker.locator(".d365nb-search input").fill(account_name[:-2])
    option = picker.locator(".d365nb-results select option", has_text=account_name)
    option.wait_for(state="attached", timeout=30_000)
    picker.locator(".d365nb-results select").select_option(value=option.get_attribute("value"))
    form.locator(".d365nb-chosen").wait_for(timeout=30_000)
    form.screenshot(path=str(ARTIFACTS / f"{app}-forms-2-filled.png"))

    form.locator("button.d365nb-submit").click()
    form.locator(".d365nb-status .d365nb-ok").wait_for(timeout=30_000)
    form.screenshot(path=str(ARTIFACTS / f"{app}-forms-3-created.png"))


def check_other_forms(page, app: str) -> None:
    """The list form runs, the flow view draws its diagram, the action form inserts a token."""
    listing = page.locator(".d365nb-form-list")
    listing.locator("button.d365nb-submit").click()
    listing.locator(".d365nb-status .d365nb-ok").wait_for(timeout=30_000)
    listing.screenshot(path=str(ARTIFACTS / f"{app}-forms-4-list.png"))
    flow_view = page.locator(".d365nb-form-flow")
    flow_view.locator("svg.d365nb-flow-diagram").wait_for(timeout=30_000)
    flow_view.screenshot(path=str(ARTIFACTS / f"{app}-forms-5-flow-view.png"))
    action = page.locator(".d365nb-form-action")
    action.scroll_into_view_if_needed()
    # Dynamic content: pick a trigger field, Insert puts its token into Subject.
    dynamic = action.locator(".d365nb-dynamic select")
    assert dynamic.input_value() != ""  # a field is picked from the start
    dynamic.select_option(label="Last Name (lastname)")
    action.get_by_role("button", name="Insert").click()
    subject_box = action.locator(".d365nb-field-subject input")
    wait_for(
        lambda: subject_box.input_value() == "{trigger[lastname]}",
        30,
        "the dynamic content token in Subject",
    )
    action.screenshot(path=str(ARTIFACTS / f"{app}-forms-6-action.png"))

"""What a learner does, in a real browser: Jupyter (Notebook 7) on 127.0.0.1 with a token, the
walkthrough opened in headless Chromium, Kernel -> Restart Kernel and Run All Cells in quick
mode, a digit drawn on the board with the mouse, the answer read from the page, and one
playground run. Fails on any error output, any code cell left without an execution count, or a
JavaScript error; screenshots go to MNIST_NN_SCREENSHOTS (default: the test's temporary folder).

Needs Debian's chromium and chromium-driver; skipped without them, unless
MNIST_NN_BROWSER_TEST=required (as in .ci/run, which installs them).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "MNIST-Walkthrough.ipynb"
RUN_ALL_SECONDS = 300  # the quick notebook takes about half a minute; a busy machine more
PATIENCE = 120  # seconds for any one step of the page; generous, as the machine may be busy
ANSWER = re.compile(r"^\S.* \(\d+%\)$")  # e.g. "7 (93%)"
# Where an error of our widgets shows: the board's module (anywidget loads it from a blob: URL
# and our code names itself), or the widget libraries running them.
WIDGET_SOURCES = re.compile(r"mnist_nn|anywidget|blob:|jupyter-widgets|jupyterlab_widgets")

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as until  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

NOTEBOOK_CELL = (By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "needs chromium and chromedriver (apt-get install chromium chromium-driver)"
    if os.environ.get("MNIST_NN_BROWSER_TEST") == "required":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The two front ends requirements.txt installs, and where each opens a notebook.
APPS = {"notebook": "notebooks", "lab": "lab/tree"}


@pytest.fixture(params=list(APPS))
def server(request, tmp_path):
    """A Jupyter server on a copy of the notebook (so autosave never touches the real one)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / NOTEBOOK, work / NOTEBOOK)  # it reads nothing else: package data
    port, token = _free_port(), secrets.token_hex(16)
    env = _isolated_environment(tmp_path)
    command = [sys.executable, "-m", "jupyter", request.param, "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={work}"]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers run as root
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, token, process, tmp_path / "server.log")
        yield {"url": url, "token": token, "work": work, "app": request.param}
    finally:
        _stop_server(url, token, process)
        log.close()


def _isolated_environment(tmp_path: Path) -> dict:
    """This interpreter's Jupyter, none of the user's settings, quick mode, whole notebooks."""
    env = {**os.environ, "MNIST_NN_QUICK": "1", "TMPDIR": str(tmp_path), "MPLBACKEND": "agg"}
    env.pop("MNIST_NN_DATASET", None)
    for name, folder in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                         ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                         ("JUPYTERLAB_SETTINGS_DIR", "settings")]:  # fmt: skip
        env[name] = str(tmp_path / folder)
    # Every cell in the page, not only those scrolled into view, so all can be checked.
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    return env


def _wait_for_server(url: str, token: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    pytest.fail(f"jupyter did not answer within 60 s:\n{log.read_text()}")


def _stop_server(url: str, token: str, process: subprocess.Popen) -> None:
    """Shut the kernels down, then the server; nothing the test started keeps running."""
    headers = {"Authorization": f"token {token}"}
    try:
        for kernel in requests.get(f"{url}/api/kernels", headers=headers, timeout=5).json():
            requests.delete(f"{url}/api/kernels/{kernel['id']}", headers=headers, timeout=10)
    except requests.RequestException:
        pass
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path = _browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--disable-gpu"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=driver_path, log_output=str(tmp_path / "d"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("MNIST_NN_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"screenshots: {folder}")
    return folder


def test_a_learner_runs_the_notebook_draws_a_digit_and_trains(server, browser, screenshots):
    browser.get(f"{server['url']}/{APPS[server['app']]}/{NOTEBOOK}?token={server['token']}")
    wait = WebDriverWait(browser, PATIENCE)
    wait.until(until.presence_of_element_located(NOTEBOOK_CELL))
    _run_all_cells(browser, server, wait, screenshots)
    browser.save_screenshot(str(screenshots / f"{server['app']}-1-ran-all-cells.png"))
    # Jupyter logs errors of its own while loading and restarting (e.g. "Canceled future for
    # kernel_info_request"); until here only our widgets' are counted, from here on all.
    _check_no_javascript_errors(browser, only_widgets=True)

    answer = _draw_a_digit(browser)
    assert ANSWER.match(answer), answer
    _click_text(browser, ".jupyter-widgets.jupyter-button", "Why?")
    WebDriverWait(browser, PATIENCE).until(_explanation_shown)
    browser.save_screenshot(str(screenshots / f"{server['app']}-2-drew-a-digit.png"))

    row = _train_in_the_playground(browser)
    assert "done" in row, row
    browser.save_screenshot(str(screenshots / f"{server['app']}-3-trained-in-the-playground.png"))

    _save(browser, server["work"] / NOTEBOOK)
    _check_saved_notebook(server["work"] / NOTEBOOK)
    _check_no_javascript_errors(browser)


def _run_all_cells(browser, server, wait, screenshots: Path) -> None:
    """Kernel -> Restart Kernel and Run All Cells, once the page's kernel is idle. A restart
    asked for while the first kernel is still starting can hang in "Starting" (seen with
    JupyterLab): then, after a while with no cell run, the page is reloaded and asked again."""
    for attempt in (1, 2):
        if attempt == 2:
            browser.refresh()
            wait.until(until.presence_of_element_located(NOTEBOOK_CELL))
        _wait_for_idle_kernel(browser, server)
        _restart_and_run_all(browser, wait)
        if _some_cell_ran_within(browser, seconds=90):
            return _wait_for_every_cell(browser, screenshots)
        browser.save_screenshot(str(screenshots / f"{server['app']}-no-cell-ran-{attempt}.png"))
    pytest.fail("Restart Kernel and Run All Cells ran no cell, twice")


def _wait_for_idle_kernel(browser, server) -> None:
    """The page shows an idle kernel and the server agrees (its kernel is started and idle)."""
    headers = {"Authorization": f"token {server['token']}"}

    def idle(page) -> bool:
        shown = page.execute_script(
            "const s = document.querySelector('.jp-Notebook-ExecutionIndicator');"
            "return s !== null && s.getAttribute('data-status') === 'idle';"
        )
        kernels = requests.get(f"{server['url']}/api/kernels", headers=headers, timeout=5).json()
        return shown and bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)

    WebDriverWait(browser, PATIENCE).until(idle)
    time.sleep(1)  # let the page finish connecting to it


def _some_cell_ran_within(browser, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if any(re.fullmatch(r"\[\d+\]:", prompt) for prompt in _prompts(browser)):
            return True
        time.sleep(1)
    return False


def _click_text(browser, selector: str, text: str):
    """Click the element matching selector whose visible text starts with `text`."""

    def found(page):
        for element in page.find_elements(By.CSS_SELECTOR, selector):
            if element.is_displayed() and element.text.strip().startswith(text):
                return element
        return False

    element = WebDriverWait(browser, PATIENCE).until(found)
    element.click()
    return element


def _restart_and_run_all(browser, wait) -> None:
    _click_text(browser, ".lm-MenuBar-itemLabel", "Kernel")
    _click_text(browser, ".lm-Menu-itemLabel", "Restart Kernel and Run All Cells")
    accept = wait.until(
        until.element_to_be_clickable((By.CSS_SELECTOR, ".jp-Dialog .jp-mod-accept"))
    )
    accept.click()


def _prompts(browser) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".map((prompt) => prompt.textContent.trim());"
    )


def _wait_for_every_cell(browser, screenshots: Path) -> None:
    """Until every code cell shows an execution count, [12]: (running ones show [*]:)."""
    deadline, idle_polls = time.monotonic() + RUN_ALL_SECONDS, 0
    while time.monotonic() < deadline:
        prompts = _prompts(browser)
        if prompts and all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts):
            return
        # Some cells ran, none is running or queued, yet cells are left: one raised, and Run
        # All stopped there.
        started = any(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts)
        idle_polls = idle_polls + 1 if started and "[*]:" not in prompts else 0
        if idle_polls >= 10:
            break
        time.sleep(1)
    browser.save_screenshot(str(screenshots / "failed-run-all.png"))
    errors = browser.execute_script(
        "return [...document.querySelectorAll('.jp-OutputArea-output')]"
        ".map((output) => output.textContent).filter((text) => text.includes('Traceback'))"
        ".map((text) => text.slice(-600));"
    )
    pytest.fail(f"not every cell ran; prompts: {_prompts(browser)}; errors: {errors}")


def _draw_a_digit(browser) -> str:
    """A 7 on the first board, stroke by stroke with the mouse; returns the answer shown."""
    board = browser.find_elements(By.CSS_SELECTOR, "canvas.mnist-nn-board")[0]
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", board)
    answer = board.find_element(By.XPATH, "ancestor::div[contains(@class, 'widget-hbox')][1]")
    # The HTML widget's content element stays; the answer inside it is replaced on each update.
    answer = answer.find_element(By.CSS_SELECTOR, ".mnist-nn-answer").find_element(By.XPATH, "..")
    assert answer.text == "draw a digit"
    # Offsets from the board's centre: a bar across the top, then down to the bottom left.
    drawing = ActionChains(browser, duration=20)
    drawing.move_to_element_with_offset(board, -70, -80).click_and_hold()
    for dx, dy in [(35, 0)] * 4 + [(-10, 25)] * 8:
        drawing.move_by_offset(dx, dy)
    drawing.release().perform()
    WebDriverWait(browser, PATIENCE).until(lambda page: answer.text != "draw a digit")
    return answer.text


def _explanation_shown(browser) -> bool:
    """The reader's "Why?" picture is in the page: a PNG image widget, no longer hidden."""
    return browser.execute_script(
        "return [...document.querySelectorAll('img.widget-image')].some("
        "(image) => image.naturalWidth > 400 && image.offsetParent !== null);"
    )


def _train_in_the_playground(browser) -> str:
    """Press Train with the playground's settings; returns the text of the run's table row."""
    train = _click_text(browser, ".jupyter-widgets.jupyter-button", "Train")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", train)
    row = WebDriverWait(browser, 120).until(
        lambda page: page.find_elements(By.CSS_SELECTOR, "table.mnist-nn-runs tr:nth-child(2)")
    )
    return row[0].text


def _save(browser, path: Path) -> None:
    before = path.stat().st_mtime_ns
    _click_text(browser, ".lm-MenuBar-itemLabel", "File")
    _click_text(browser, ".lm-Menu-itemLabel", "Save")
    WebDriverWait(browser, PATIENCE).until(lambda _: path.stat().st_mtime_ns != before)


def _check_saved_notebook(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    unrun = [index for index, cell in enumerate(code_cells) if cell.execution_count is None]
    errors = [
        f"{output.ename}: {output.evalue}"
        for cell in code_cells
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not unrun and not errors, f"cells not run: {unrun}; errors: {errors}"


def _check_no_javascript_errors(browser, only_widgets: bool = False) -> None:
    """No error in the browser's console since the last check (reading the log empties it)."""
    severe = [
        entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"
    ]
    if only_widgets:
        severe = [message for message in severe if WIDGET_SOURCES.search(message)]
    assert not severe, severe

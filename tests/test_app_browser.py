"""The app in a real browser (Debian's Chromium, driven by Playwright; nothing is downloaded): create a project, add
images of two classes (one of them mislabeled), train, try an image, fix the mislabeled one from the cleaner,
retrain, download the model and check it predicts as the app does; a bad upload shows a message and changes nothing;
the webcam adds a picture (Chromium's fake camera). Screenshots of the main screens are written to
$TRANSFERKIT_SCREENSHOTS (default: the test's temporary folder)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright  # the [test] extra; it drives Debian's Chromium

# a browser, the app and a training run each: about 45 s together, so they run in the full lane (CI), not in make test
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_app(project_dir: Path, model: str = "tf_efficientnet_lite0"):
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "transferkit.cli", "app", str(project_dir), "--port", str(port),
                             "--model", model],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode()[-2000:])
        try:
            if httpx.get(url + "api/state", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the app did not start within 60 s")


def _stop(proc) -> None:
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def app_url(tmp_path):
    proc, url = _start_app(tmp_path / "project")
    yield url, tmp_path / "project"
    _stop(proc)


@pytest.fixture
def page():
    assert CHROMIUM, "Chromium is not installed: `make browser` (apt-get install chromium) installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
        context.grant_permissions(["camera"])
        yield context.new_page()
        browser.close()


def _shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TRANSFERKIT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _screenshot(page, path: Path) -> None:
    page.wait_for_function("() => [...document.images].every(i => i.complete)")  # thumbnails drawn first
    page.screenshot(path=str(path), full_page=True)


def _add_texts_by_class(page, texts: dict[str, list[str]]) -> None:
    """Create each class (label) and type its texts into its card."""
    for name, lines in texts.items():
        page.fill("#new-class", name)
        page.click("#add-class")
        page.fill(f".class-card[data-class={name}] textarea.texts", "\n".join(lines))
        page.click(f".class-card[data-class={name}] button.add-texts")


def _wait_run(page, number: int, timeout_s: float = 240) -> None:
    page.wait_for_function(f"() => document.querySelector('#stage').textContent.startsWith('Run {number} ') && "
                           "/: (done|failed)/.test(document.querySelector('#stage').textContent)",
                           timeout=timeout_s * 1000)
    assert "done" in page.text_content("#stage"), page.text_content("#result")


def test_label_train_try_fix_retrain_and_take_the_model_away(app_url, page, example_train, example_test, tmp_path):
    url, project_dir = app_url
    shots = _shots(tmp_path)
    page.goto(url)
    page.click("button[data-modality=image]")
    for name in ("birds", "fruit"):
        page.fill("#new-class", name)
        page.click("#add-class")
        page.wait_for_selector(f".class-card[data-class={name}]")
    birds = sorted((example_train / "birds").glob("*.png"))[:10]
    fruit = sorted((example_train / "fruit").glob("*.png"))[:11]
    page.set_input_files(".class-card[data-class=birds] input.upload", [str(f) for f in birds + fruit[-1:]])
    page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 11")
    page.set_input_files(".class-card[data-class=fruit] input.upload", [str(f) for f in fruit[:-1]])
    page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 21")
    mislabeled = page.get_attribute(f"#examples .item[data-name='{fruit[-1].name}']", "data-id")

    _screenshot(page, shots / "1-collect.png")
    # a bad upload: a message, and nothing changes
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.set_input_files(".class-card[data-class=fruit] input.upload", str(bad))
    page.wait_for_selector("#message.error")
    assert "not an image that can be read" in page.text_content("#message")
    assert page.locator("#examples .item").count() == 21

    unlabeled = sorted((example_test / "fruit").glob("*.png"))[-2:]
    page.set_input_files("#pool-upload", [str(f) for f in unlabeled])
    page.wait_for_function("() => document.querySelector('#counts').textContent.includes('2 unlabeled')")

    page.select_option("#strategy", "features")
    page.click("#train")
    _wait_run(page, 1)
    page.wait_for_function("() => document.querySelectorAll('#next .suggestion').length === 2")  # the pool, ranked
    page.locator("#next .suggestion").first.locator("button.label-as[data-label=fruit]").click()
    page.wait_for_function("() => document.querySelector('#counts').textContent.includes('1 unlabeled')")
    result = page.text_content("#result")  # the estimate, and the cross-validation it comes from
    assert "estimated accuracy" in result and "5-fold cross-validated" in result and "n=21" in result
    _screenshot(page, shots / "2-train.png")

    probe = sorted((example_test / "birds").glob("*.png"))[0]
    page.set_input_files("#try-file", str(probe))
    page.wait_for_selector("#try-label")
    shown = page.text_content("#try-label")
    _screenshot(page, shots / "3-try.png")

    # the fruit labeled as a bird is among the most confidently wrong, or at least the least certain
    wrong = page.locator(f"#wrong .suggestion[data-id='{mislabeled}'], #unsure .suggestion[data-id='{mislabeled}']")
    wrong.first.wait_for(timeout=10_000)
    _screenshot(page, shots / "4-fix.png")
    wrong.first.locator("button.label-as[data-label=fruit]").click()
    page.wait_for_function(f"() => document.querySelector(\"#examples .item[data-id='{mislabeled}']\")"
                           ".dataset.label === 'fruit'")
    item = httpx.get(url + "api/items").json()
    assert next(i for i in item if str(i["id"]) == mislabeled)["label"] == "fruit"
    assert (project_dir / "data" / "train" / "fruit").is_dir() and len(list((project_dir / "data" / "train" / "fruit")
                                                                             .iterdir())) == 12

    page.click("#train")
    _wait_run(page, 2)

    with page.expect_download() as download:
        page.click("#dl-model button")
    archive = tmp_path / "model.zip"
    download.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "downloaded")
    from transferkit.predictor import Predictor

    model = Predictor.load(tmp_path / "downloaded" / "model")
    tests = sorted((example_test / "birds").glob("*.png"))[:3] + sorted((example_test / "fruit").glob("*.png"))[:3]
    local = model.predict_proba(tests)
    for path, p in zip(tests, local):
        served = httpx.post(url + "api/predict/image", files={"file": (path.name, path.read_bytes())}).json()
        assert served["label"] == model.classes[p.argmax()]
        assert served["probability"] == pytest.approx(float(p.max()), abs=1e-5)
    assert shown.split()[0] in ("birds", "fruit")


def test_the_webcam_adds_a_picture_to_a_class(app_url, page):
    url, project_dir = app_url
    page.goto(url)
    page.click("button[data-modality=image]")
    page.fill("#new-class", "faces")
    page.click("#add-class")
    page.click(".class-card[data-class=faces] button.webcam")
    page.wait_for_function("() => document.querySelector('#webcam').videoWidth > 0")
    page.click("#snap")
    page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 1")
    assert len(list((project_dir / "data" / "train" / "faces").glob("*.png"))) == 1


def test_a_second_tab_and_a_restarted_app_show_everything_as_it_was(page, example_train, tmp_path):
    proc, url = _start_app(tmp_path / "project")
    try:
        page.goto(url)
        page.click("button[data-modality=image]")
        page.fill("#new-class", "birds")
        page.click("#add-class")
        files = sorted((example_train / "birds").glob("*.png"))[:2]
        page.set_input_files(".class-card[data-class=birds] input.upload", [str(f) for f in files])
        page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 2")
        other = page.context.new_page()  # a second tab relabels one; the first tab shows it without a reload
        other.goto(url)
        other.wait_for_function("() => document.querySelectorAll('#examples .item').length === 2")
        other.select_option("#examples .item:first-child select.move", "test")
        page.wait_for_function("() => document.querySelector('#counts').textContent.startsWith('1 train · 1 test')",
                               timeout=15_000)
    finally:
        _stop(proc)
    proc, url = _start_app(tmp_path / "project")  # the app stopped and started again: nothing lived in the browser
    try:
        page.goto(url)
        page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 2")
        assert page.text_content("#counts").startswith("1 train · 1 test")
        assert "1 train · 1 test" in page.text_content(".class-card[data-class=birds] h3")
    finally:
        _stop(proc)


def test_a_text_project_in_the_browser_types_texts_trains_and_classifies(page, tiny_encoder, tmp_path):
    proc, url = _start_app(tmp_path / "reviews", model=tiny_encoder)
    try:
        page.goto(url)
        page.click("button[data-modality=text]")
        texts = {"pos": ["great value, works well", "love it, would buy again", "excellent and sturdy"],
                 "neg": ["broke after a day", "terrible, do not buy", "stopped working at once"]}
        _add_texts_by_class(page, texts)
        page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 6")
        assert not page.is_checked("#pool-others")  # the unlabeled pool holds the classes only, unless said
        with page.expect_response("**/api/pool"):
            page.check("#pool-others")
        assert httpx.get(url + "api/state").json()["pool_has_others"] is True
        page.reload()
        page.wait_for_function("() => document.querySelector('#pool-others').checked")  # kept in the project
        page.select_option("#strategy", "features")
        page.click("#train")
        _wait_run(page, 1)
        page.fill("#try-text", "works great, very happy")
        page.click("#try-text-button")
        page.wait_for_selector("#try-label")
        assert page.text_content("#try-label").split()[0] in ("pos", "neg")
        # the note on an input unlike every trained class shows exactly when the server says so (open set)
        answer = httpx.post(url + "api/predict/text", json={"text": "works great, very happy"}).json()
        assert isinstance(answer["known"], bool)
        assert page.locator("#try-unknown").count() == (0 if answer["known"] else 1)
        page.route("**/api/predict/text", lambda route: route.fulfill(json={**answer, "known": False}))
        page.click("#try-text-button")
        page.wait_for_selector("#try-unknown")
        assert "unlike every class" in page.text_content("#try-unknown")
        table = (tmp_path / "reviews" / "data" / "train.csv").read_text().splitlines()
        assert table[0] == "text,label" and len(table) == 7  # the CSV `transferkit fit` reads
    finally:
        _stop(proc)


def test_a_project_of_several_labels_in_the_browser_ticks_labels_trains_and_answers_a_set(page, tiny_encoder,
                                                                                          tmp_path):
    proc, url = _start_app(tmp_path / "trips", model=tiny_encoder)
    try:
        page.goto(url)
        page.check("input[name=task][value=labels]")
        page.click("button[data-modality=text]")
        page.wait_for_selector("#collect-title:has-text('several')")
        assert page.text_content("#add-class") == "Add label"
        texts = {"flight": ["cheap flight to the airport", "boarding pass at the airport", "terrible plane again"],
                 "hotel": ["hotel room service was late", "check-in desk at the hotel", "lovely suite today"]}
        _add_texts_by_class(page, texts)
        page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 6")
        first = page.locator("#examples .item").first  # "cheap flight to the airport": it is about a hotel too
        first.locator("input.label-box[value=hotel]").check()
        page.wait_for_function("() => document.querySelector('.class-card[data-class=hotel]').textContent"
                               ".includes('4 train')")
        table = (tmp_path / "trips" / "data" / "train.csv").read_text().splitlines()
        assert table[0] == "text,labels" and "cheap flight to the airport,flight|hotel" in table
        page.select_option("#strategy", "features")
        page.click("#train")
        _wait_run(page, 1)
        assert "micro-F1" in page.text_content("#accuracy")
        page.fill("#try-text", "a plane to the hotel")
        page.click("#try-text-button")
        page.wait_for_selector("#try-label")
        answer = httpx.post(url + "api/predict/text", json={"text": "a plane to the hotel"}).json()
        shown = page.text_content("#try-label")
        assert shown == (", ".join(answer["labels"]) or "none of the labels")  # the set the server gives
        assert page.locator("#try-result .top").count() == 2  # each label's probability
        _screenshot(page, _shots(tmp_path) / "5-labels.png")
    finally:
        _stop(proc)


def test_a_project_of_numbers_in_the_browser_types_numbers_and_answers_one(page, tiny_encoder, tmp_path):
    proc, url = _start_app(tmp_path / "prices", model=tiny_encoder)
    try:
        page.goto(url)
        page.check("input[name=task][value=number]")
        page.click("button[data-modality=text]")
        page.wait_for_selector("#number-row", state="visible")
        assert page.is_hidden("#class-row") and page.is_hidden("#pool-others-label")  # numbers: no "none of these"
        # the first batch's request is held until the second batch is typed: what was typed meanwhile is kept
        page.evaluate("""() => { const real = window.fetch; window.held = [];
            window.fetch = (path, o) => window.held && String(path).includes('api/texts')
                ? new Promise(done => window.held.push(() => done(real(path, o)))) : real(path, o); }""")
        page.fill("#number-value", "100")
        page.fill("#number-texts", "a flight\na plane ticket\nan airport transfer")
        page.click("#add-number-texts")
        page.wait_for_function("() => window.held.length === 1")
        page.fill("#number-value", "20")
        page.fill("#number-texts", "a train\na rail ticket\na station platform")
        page.evaluate("() => { const go = window.held; window.held = null; go.forEach(f => f()); }")
        page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 3")
        assert page.input_value("#number-texts") == "a train\na rail ticket\na station platform"
        page.click("#add-number-texts")
        page.wait_for_function("() => document.querySelectorAll('#examples .item').length === 6")
        edit = page.locator("#examples .item").first.locator("input.value-edit")
        assert edit.input_value() == "100"
        edit.fill("120")
        edit.dispatch_event("change")
        page.wait_for_function("() => document.querySelector('#history').textContent.includes('120/train')")
        assert (tmp_path / "prices" / "data" / "train.csv").read_text().splitlines()[:2] == ["text,value",
                                                                                             "a flight,120"]
        page.select_option("#strategy", "features")
        page.click("#train")
        _wait_run(page, 1)
        score = page.text_content("#accuracy")
        assert "R²" in score and float(score.split()[0]) <= 1  # R² as a number, not a percentage
        page.fill("#try-text", "a cheap flight")
        page.click("#try-text-button")
        page.wait_for_selector("#try-label")
        float(page.text_content("#try-label"))  # a number, not a class
    finally:
        _stop(proc)

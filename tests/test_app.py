"""`transferkit app`: projects on disk that reopen as they were and that two tabs can edit at once, uploads that are
checked before anything is written, a token off localhost, and training in a child process that can be cancelled.
The whole journey in a real browser is in test_app_browser.py."""

from __future__ import annotations

import csv
import io
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from transferkit.app import Project, ProjectError
from transferkit.app.web import create_app


def _png(color=(200, 30, 30), size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def project(tmp_path):
    return Project(tmp_path / "birds", "image")


def _snapshot(project: Project) -> tuple:
    files = sorted(p.relative_to(project.root).as_posix() for p in project.root.rglob("*") if p.is_file()
                   and not p.name.startswith("transferkit-project.db"))
    return files, project.items(), project.classes()


def test_a_project_is_folders_the_cli_reads_and_reopens_as_it_was(project, example_train):
    project.add_class("birds")
    project.add_class("fruit")
    for cls in ("birds", "fruit"):
        for f in sorted((example_train / cls).glob("*.png"))[:3]:
            project.add_image(f.read_bytes(), f.name, cls)
    again = Project(project.root)
    assert again.modality == "image" and [c["name"] for c in again.classes()] == ["birds", "fruit"]
    assert [(i["name"], i["label"]) for i in again.items()] == [(i["name"], i["label"]) for i in project.items()]
    from transferkit.predictor import read

    data = read("image", again.training_data("train"), require_labels=True)
    assert sorted(data.classes) == ["birds", "fruit"] and len(data) == 6


def test_two_tabs_editing_at_once_keep_both_changes(project):
    project.add_class("a")
    project.add_class("b")
    first = project.add_image(_png((255, 0, 0)), "red.png", "a")
    second = project.add_image(_png((0, 0, 255)), "blue.png", "a")
    tab1, tab2 = Project(project.root), Project(project.root)  # two connections, as two browser tabs have
    tab1.update(first["id"], label="b")
    tab2.update(second["id"], split="test")
    rows = {r["name"]: r for r in Project(project.root).items()}
    assert (rows["red.png"]["label"], rows["red.png"]["split"]) == ("b", "train")
    assert (rows["blue.png"]["label"], rows["blue.png"]["split"]) == ("a", "test")
    assert (project.root / rows["red.png"]["file"]).is_file() and "/b/" in rows["red.png"]["file"]


@pytest.mark.parametrize("item_id", [2**63, -2**63 - 1, 10**30])
def test_an_example_number_sqlite_cannot_hold_is_no_example_and_says_so(project, item_id):
    with pytest.raises(ProjectError, match=f"There is no example {item_id}"):
        project.update(item_id, split="test")
    with pytest.raises(ProjectError, match="no example"):
        project.delete(item_id)


def test_exact_and_near_duplicates_are_shown_also_across_train_and_test(project):
    project.add_class("a")
    project.add_image(_png((10, 200, 10)), "one.png", "a")
    project.add_image(_png((10, 200, 10)), "copy.png", "a", split="test")
    near = Image.new("RGB", (64, 48), (10, 200, 10))
    near.putpixel((0, 0), (12, 198, 10))
    buffer = io.BytesIO()
    near.save(buffer, "PNG")
    project.add_image(buffer.getvalue(), "almost.png", "a")
    groups = project.duplicates()
    exact = [g for g in groups if g["kind"] == "exact"]
    assert len(exact) == 1 and exact[0]["across_train_and_test"]
    assert any(g["kind"] == "near" and "almost.png" in {i["name"] for i in g["items"]} for g in groups)


@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"this is not an image", "not an image that can be read"),
    ("../../etc/evil.png", _png(), "not a plain file name"),
    ("..\\evil.png", _png(), "not a plain file name"),
])
def test_bad_uploads_get_a_message_and_change_nothing(project, name, data, message):
    project.add_class("a")
    before = _snapshot(project)
    client = TestClient(create_app(project))
    response = client.post("/api/images", files=[("files", (name, data, "image/png"))], data={"label": "a"})
    assert response.status_code == 400 and message in response.json()["detail"]
    assert _snapshot(project) == before
    assert not (project.root.parent / "etc").exists()


def test_a_50_megapixel_image_is_refused_with_the_limit(project):
    project.add_class("a")
    buffer = io.BytesIO()
    Image.new("L", (8700, 5800)).save(buffer, "PNG")  # 50.5 megapixels, a few hundred kB compressed
    before = _snapshot(project)
    response = TestClient(create_app(project)).post("/api/images", files=[("files", ("huge.png", buffer.getvalue()))],
                                                    data={"label": "a"})
    assert response.status_code == 400 and "50 megapixels" in response.json()["detail"] and "Downscale" in \
        response.json()["detail"]
    assert _snapshot(project) == before


def test_a_100_mb_upload_is_refused_before_it_is_read(project):
    project.add_class("a")
    before = _snapshot(project)
    response = TestClient(create_app(project)).post(
        "/api/images", files=[("files", ("big.png", b"\0" * (100 * 2**20)))], data={"label": "a"})
    assert response.status_code == 413 and "larger than 64 MB" in response.json()["detail"]
    assert _snapshot(project) == before


def test_a_chunked_upload_over_the_limit_is_refused_as_it_streams(project):
    """No Content-Length to refuse it by: the limit is counted as the body arrives."""
    project.add_class("a")
    before = _snapshot(project)

    def body():
        yield b'--tk\r\nContent-Disposition: form-data; name="files"; filename="big.png"\r\n\r\n'
        for _ in range(70):
            yield b"\0" * 2**20
        yield b"\r\n--tk--\r\n"

    response = TestClient(create_app(project)).post("/api/images", content=body(),
                                                    headers={"content-type": "multipart/form-data; boundary=tk"})
    assert response.status_code == 413 and "larger than 64 MB" in response.json()["detail"]
    assert _snapshot(project) == before


def test_an_image_over_the_per_image_limit_says_the_limit_not_its_size(project):
    """A 30 MB image once was reported as "is 20 MB" (its size as read, cut at the limit)."""
    project.add_class("a")
    response = TestClient(create_app(project)).post(
        "/api/images", files=[("files", ("big.png", b"\0" * (30 * 2**20)))], data={"label": "a"})
    detail = response.json()["detail"]
    assert response.status_code == 400 and "big.png is larger than 20 MB" in detail and "is 20 MB" not in detail


def test_class_names_that_are_not_folder_names_are_refused(project):
    for bad in ("../up", "a/b", ".hidden", "", "x" * 65, "tab\there"):
        with pytest.raises(ProjectError, match="cannot be a class name"):
            project.add_class(bad)
    assert project.classes() == []


def test_off_localhost_every_request_needs_the_token(project):
    client = TestClient(create_app(project, token="s3cret"))
    assert client.get("/api/state").status_code == 401
    assert "token" in client.get("/").json()["detail"]
    assert client.get("/api/state", headers={"X-Token": "s3cret"}).status_code == 200
    assert client.get("/?token=s3cret").status_code == 200  # sets the cookie the page's requests carry
    assert client.get("/api/state").status_code == 200


def test_training_needs_two_classes_with_two_examples(project):
    project.add_class("a")
    project.add_image(_png(), "one.png", "a")
    response = TestClient(create_app(project)).post("/api/train", json={"strategy": "features"})
    assert response.status_code == 400 and "at least two classes" in response.json()["detail"]
    assert project.runs() == []


def test_texts_typed_or_pasted_as_csv_become_the_csv_the_cli_reads(tmp_path):
    project = Project(tmp_path / "reviews", "text")
    client = TestClient(create_app(project))
    assert client.post("/api/csv", json={"csv": "text,label\ngreat value,pos\nbroke at once,neg\n"}).status_code == 200
    assert client.post("/api/texts", json={"texts": ["love it", "  "], "label": "pos"}).json()["added"] == 1
    table = (project.root / "data" / "train.csv").read_text()
    assert table.splitlines() == ["text,label", "great value,pos", "broke at once,neg", "love it,pos"]


@pytest.mark.slow  # fine-tunes a network in a child process
def test_a_run_trains_in_a_child_process_can_be_cancelled_and_its_model_taken_away(project, example_train,
                                                                                    example_test, tmp_path):
    for cls in ("birds", "fruit"):
        project.add_class(cls)
        for f in sorted((example_train / cls).glob("*.png"))[:4]:
            project.add_image(f.read_bytes(), f.name, cls)
        for f in sorted((example_test / cls).glob("*.png"))[:2]:
            project.add_image(f.read_bytes(), f.name, cls, split="test")
    for cls in ("birds", "fruit"):  # 20 unlabeled images: enough to read the model's accuracy on them
        for f in sorted((example_test / cls).glob("*.png"))[2:12]:
            project.add_image(f.read_bytes(), f.name, None, split="pool")
    client = TestClient(create_app(project, model="tf_efficientnet_lite0"))
    run = client.post("/api/train", json={"strategy": "features"}).json()["run"]
    assert client.post("/api/train", json={"strategy": "features"}).status_code == 400  # one run at a time
    assert client.get("/api/state").status_code == 200  # the app answers while it trains
    cancelled = client.post(f"/api/runs/{run}/cancel").json()
    assert cancelled["status"] == "cancelled" and not (project.root / "runs" / str(run) / "model").exists()
    run = client.post("/api/train", json={"strategy": "features"}).json()["run"]
    deadline = time.monotonic() + 240
    while project.run(run)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    finished = project.run(run)
    assert finished["status"] == "done", finished
    assert finished["result"]["n"] == 8 and 0 <= finished["result"]["accuracy"] <= 1
    assert len(project.suggestions("unsure", limit=100)) == 8  # every training example scored out of fold
    assert finished["result"]["test"]["n"] == 4 and len(project.suggestions("next", limit=100)) == 20
    notes = finished["result"]["notes"]  # 8 labels and 4 test examples: both numbers come with how far they go
    sizes = [n.split(" measure accuracy to about +-")[0] for n in notes if "measure accuracy to about" in n]
    assert sizes == ["8 labels", "4 test examples"]
    assert finished["result"]["pool"]["n"] == 20 and 0 < finished["result"]["pool"]["accuracy"] <= 1
    assert any(n.startswith("Estimated accuracy on these 20 unlabeled images") for n in notes)

    archive = client.get("/api/download/model")
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    (tmp_path / "model.zip").write_bytes(archive.content)
    shutil.unpack_archive(tmp_path / "model.zip", tmp_path / "unzipped")
    from transferkit.predictor import Predictor

    downloaded = Predictor.load(tmp_path / "unzipped" / "model")
    table = list(csv.DictReader(io.StringIO(client.get("/api/download/predictions").text)))
    assert [r["split"] for r in table] == ["pool"] * 20 + ["test"] * 4
    expected = downloaded.predict([str(project.root / r["file"]) for r in project.items("pool") + project.items("test")])
    assert [r["label"] for r in table] == list(expected)  # the CSV is what the downloaded model predicts
    report = client.get("/api/download/report")
    assert report.status_code == 200 and "4 test examples" in report.text and "<img" in report.text


@pytest.mark.slow
def test_transfer_against_scratch_when_asked_and_the_onnx_download(tmp_path, small_train, tiny_backbone):
    project = Project(tmp_path / "p", "image")
    for cls in ("birds", "fruit"):
        project.add_class(cls)
        for f in sorted((small_train / cls).glob("*.png")):
            project.add_image(f.read_bytes(), f.name, cls)
    client = TestClient(create_app(project, model=tiny_backbone))
    run = client.post("/api/train", json={"strategy": "features", "compare_scratch": True}).json()["run"]
    deadline = time.monotonic() + 600
    while project.run(run)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
    result = project.run(run)["result"]
    assert project.run(run)["status"] == "done", result
    assert 0 <= result["scratch"]["accuracy"] <= 1 and result["scratch"]["n"] > 0
    assert result["scratch"]["measured"] == "validation accuracy"  # a name for the page, not a metrics key
    wrong = client.post("/api/predict/text", json={"text": "a bird on a branch"})  # once a 500 (IndexError)
    assert wrong.status_code == 400 and "classifies images" in wrong.json()["detail"]
    export = client.get("/api/download/onnx")
    assert export.status_code == 200
    (tmp_path / "onnx.zip").write_bytes(export.content)
    shutil.unpack_archive(tmp_path / "onnx.zip", tmp_path / "onnx")
    assert (tmp_path / "onnx" / "onnx" / "model.onnx").is_file()


def test_a_text_project_trains_and_classifies_a_typed_text(tmp_path, tiny_encoder):
    project = Project(tmp_path / "reviews", "text")
    client = TestClient(create_app(project, model=tiny_encoder))
    rows = ["great value, works well,pos", "love it, would buy again,pos", "excellent and sturdy,pos",
            "broke after a day,neg", "terrible, do not buy,neg", "stopped working at once,neg"]
    assert client.post("/api/csv", json={"csv": "text,label\n" + "\n".join(f'"{r.rsplit(",", 1)[0]}",'
                                                                         f'{r.rsplit(",", 1)[1]}' for r in rows)
                                         }).json()["added"] == 6
    # an unlabeled pool said to hold other things too: the run's "none of these" learns from it
    pool = [f"unlabeled review number {i}: " + ("fine" if i % 3 else "a cookbook about soup") for i in range(30)]
    assert client.post("/api/texts", json={"texts": pool, "split": "pool"}).json()["added"] == 30
    assert client.get("/api/state").json()["pool_has_others"] is False  # off unless said
    assert client.post("/api/pool", json={"has_others": True}).json() == {"pool_has_others": True}
    assert Project(project.root).pool_has_others  # kept in the project
    run = client.post("/api/train", json={"strategy": "features"}).json()["run"]
    deadline = time.monotonic() + 240
    while project.run(run)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert project.run(run)["status"] == "done", project.run(run)["result"]
    from transferkit import load_model

    assert load_model(project.latest_model()).open_set_.n_pool == 30
    answer = client.post("/api/predict/text", json={"text": "works great"}).json()
    assert answer["label"] in ("pos", "neg") and abs(sum(t["probability"] for t in answer["top"]) - 1) < 1e-6
    assert isinstance(answer["known"], bool)  # whether it looks like a trained class at all (open set)
    assert client.post("/api/predict/text", json={"text": "   "}).status_code == 400
    wrong = client.post("/api/predict/image", files={"file": ("a.png", _png())})
    assert wrong.status_code == 400 and "classifies texts" in wrong.json()["detail"]


# -- several labels per example, and numbers -------------------------------------------------------------------------

TAGGED = [("cheap flight to the airport", "flight"), ("hotel room service was late", "hotel"),
          ("plane and hotel suite booked", "flight|hotel"), ("boarding pass at the airport", "flight"),
          ("check-in desk at the hotel", "hotel"), ("flight and room service", "flight|hotel"),
          ("lovely suite today", "hotel"), ("terrible plane again", "flight"),
          ("airport hotel suite", "flight|hotel"), ("cancelled flight", "flight")]


def _tagged_csv(rows) -> str:
    return "text,labels\n" + "\n".join(f'"{text}",{labels}' for text, labels in rows)


def test_a_project_of_several_labels_keeps_them_in_the_table_the_cli_reads(tmp_path):
    project = Project(tmp_path / "trips", "text", task="labels")
    client = TestClient(create_app(project))
    assert client.post("/api/csv", json={"csv": _tagged_csv(TAGGED)}).json()["added"] == 10
    assert client.get("/api/state").json()["task"] == "labels"
    assert project.classes() == [{"name": "flight", "train": 7, "test": 0}, {"name": "hotel", "train": 6, "test": 0}]
    table = list(csv.DictReader((project.root / "data" / "train.csv").open()))
    assert table[2] == {"text": "plane and hotel suite booked", "labels": "flight|hotel"}
    item = project.items()[0]
    changed = client.patch(f"/api/items/{item['id']}", json={"label": ["hotel", "flight"]}).json()
    assert changed["labels"] == ["flight", "hotel"] and len(project.items(label="hotel")) == 7
    for bad, says in ((["flight", "train"], "no label 'train'"), ("flight||hotel", "empty label"),
                      ([], "needs at least one label")):
        response = client.post("/api/texts", json={"texts": ["a bus"], "label": bad})
        assert response.status_code == 400 and says in response.json()["detail"]
    assert len(project.items()) == 10  # nothing was added by the refused requests
    refused = client.post("/api/modality", json={"modality": "text", "task": "number"})
    assert refused.status_code == 400 and "cannot change" in refused.json()["detail"]
    assert Project(project.root).task == "labels"  # reopened as it was


def test_a_project_of_numbers_lists_images_with_their_number_and_refuses_words(tmp_path):
    project = Project(tmp_path / "counts", "image", task="number")
    client = TestClient(create_app(project))
    for i, color in enumerate([(200, 0, 0), (0, 200, 0), (0, 0, 200)]):
        added = client.post("/api/images", files={"files": (f"{i}.png", _png(color))}, data={"label": f"{i}.5"})
        assert added.status_code == 200 and added.json()["added"][0]["value"] == i + 0.5
    before = _snapshot(project)
    word = client.post("/api/images", files={"files": ("w.png", _png((9, 9, 9)))}, data={"label": "three"})
    assert word.status_code == 400 and "'three' is not one" in word.json()["detail"]
    assert _snapshot(project) == before  # nothing written
    assert client.post("/api/classes", json={"name": "big"}).status_code == 400
    table = list(csv.DictReader((project.root / "data" / "train.csv").open()))
    assert [r["value"] for r in table] == ["0.5", "1.5", "2.5"]
    assert all((project.root / "data" / r["path"]).is_file() for r in table)  # paths relative to the table
    first = project.items()[0]["id"]
    client.patch(f"/api/items/{first}", json={"label": 4})
    client.patch(f"/api/items/{project.items()[1]['id']}", json={"split": "pool"})
    table = list(csv.DictReader((project.root / "data" / "train.csv").open()))
    assert [r["value"] for r in table] == ["4", "2.5"] and project.items("pool")[0]["value"] is None


def test_an_upload_of_many_images_writes_the_tables_once(tmp_path, monkeypatch):
    from transferkit.app import project as project_module

    project = Project(tmp_path / "counts", "image", task="number")
    client = TestClient(create_app(project))
    written = []
    real = project_module.write_atomic
    monkeypatch.setattr(project_module, "write_atomic", lambda path, data: (written.append(Path(path).name),
                                                                            real(path, data)))
    files = [("files", (f"{i}.png", _png((i * 20, 0, 0)))) for i in range(6)]
    assert len(client.post("/api/images", files=files, data={"label": "2"}).json()["added"]) == 6
    assert written.count("train.csv") == 1  # not once per image (a bulk upload would rewrite n^2/2 rows)
    table = list(csv.DictReader((project.root / "data" / "train.csv").open()))
    assert [r["value"] for r in table] == ["2"] * 6


def test_a_project_made_before_tasks_opens_as_one_class_per_example(tmp_path):
    import sqlite3

    root = tmp_path / "old"
    root.mkdir()
    with sqlite3.connect(root / "transferkit-project.db") as db:  # the items table as it was before tasks
        db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, digest TEXT NOT NULL, near TEXT, file "
                   "TEXT, text TEXT, label TEXT, split TEXT NOT NULL, name TEXT NOT NULL, added REAL NOT NULL, "
                   "updated REAL NOT NULL)")
        db.execute("INSERT INTO items (digest, text, label, split, name, added, updated) VALUES ('d', 'hi', NULL, "
                   "'pool', 'hi', 0, 0)")
    project = Project(root)
    assert project.task == "class" and project.items()[0]["value"] is None and project.items()[0]["labels"] is None


def _trained(project: Project, client, strategy: str = "features", timeout_s: float = 240) -> dict:
    run = client.post("/api/train", json={"strategy": strategy}).json()["run"]
    deadline = time.monotonic() + timeout_s
    while project.run(run)["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert project.run(run)["status"] == "done", project.run(run)["result"]
    return project.run(run)["result"]


def test_several_labels_train_point_at_doubtful_labels_and_answer_with_a_set(tmp_path, tiny_encoder):
    project = Project(tmp_path / "trips", "text", task="labels")
    client = TestClient(create_app(project, model=tiny_encoder))
    client.post("/api/csv", json={"csv": _tagged_csv(TAGGED)})
    client.post("/api/csv", json={"csv": _tagged_csv([("airport hotel", "flight|hotel"), ("a plane", "flight")]),
                                  "split": "test"})
    client.post("/api/texts", json={"texts": ["hotel only", "plane only", "suite and plane"], "split": "pool"})
    refused = client.post("/api/train", json={"strategy": "scratch"})
    assert refused.status_code == 400 and "auto, features or finetune" in refused.json()["detail"]
    result = _trained(project, client)
    assert result["task"] == "labels" and result["measured"] == "micro_f1" and 0 <= result["accuracy"] <= 1
    assert result["test"]["n"] == 2 and result["test"]["name"] == "micro-F1"
    assert len(project.suggestions("unsure", limit=100)) == 10  # every training example, scored out of fold
    assert len(project.suggestions("next", limit=100)) == 3
    for wrong in project.suggestions("wrong", limit=100):  # the model's set differs from the one given
        assert set(wrong["predicted"].split("|")) != set(wrong["labels"])
    answer = client.post("/api/predict/text", json={"text": "plane to the hotel"}).json()
    assert set(answer["labels"]) <= {"flight", "hotel"} and set(answer["probabilities"]) == {"flight", "hotel"}
    table = list(csv.DictReader(io.StringIO(client.get("/api/download/predictions").text)))
    assert list(table[0]) == ["name", "split", "given_label", "labels", "p_flight", "p_hotel"]
    assert [r["given_label"] for r in table if r["split"] == "test"] == ["flight|hotel", "flight"]


@pytest.mark.slow  # a run in a child process on images, and an ONNX export
def test_numbers_train_show_the_farthest_from_the_model_and_export(tmp_path, small_train, tiny_backbone):
    project = Project(tmp_path / "counts", "image", task="number")
    client = TestClient(create_app(project, model=tiny_backbone))
    files = sorted(small_train.rglob("*.png"))
    for i, f in enumerate(files):
        project.add_image(f.read_bytes(), f.name, str(float(i % 5)), split="train" if i < 14 else "test")
    result = _trained(project, client)
    assert result["task"] == "number" and result["measured"] == "r2" and result["test"]["name"] == "R²"
    assert len(project.suggestions("wrong", limit=100)) == 14 and project.suggestions("next") == []
    answer = client.post("/api/predict/image", files={"file": ("a.png", files[0].read_bytes())}).json()
    assert isinstance(answer["value"], float)
    table = list(csv.DictReader(io.StringIO(client.get("/api/download/predictions").text)))
    assert list(table[0]) == ["name", "split", "given_label", "value"] and len(table) == len(files) - 14
    report = client.get("/api/download/report")
    assert report.status_code == 200 and "R²" in report.text
    assert client.get("/api/download/onnx").status_code == 200

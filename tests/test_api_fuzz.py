"""The server's and the app's HTTP APIs, fuzzed from their own OpenAPI documents (schemathesis, in-process over ASGI:
no socket, bounded examples): no request body, query or path the schema allows, or nearly allows, gets a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from transferkit.predictor import Predictor

EXAMPLES = 15  # per operation: the suite's fast lane stays inside its budget

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def image_server_schema(tiny_image_model):
    from transferkit.serve import create_app

    return schemathesis.openapi.from_asgi("/openapi.json", create_app(Predictor.load(tiny_image_model)))


@pytest.fixture(scope="module")
def text_model(tmp_path_factory, tiny_encoder, text_csv):
    from transferkit import Features, TextClassifier

    folder = tmp_path_factory.mktemp("fuzz-text") / "model"
    TextClassifier(tiny_encoder, Features(), verbose=False).fit(text_csv).save(folder)
    return folder


@pytest.fixture(scope="module")
def text_server_schema(text_model):
    from transferkit.serve import create_app

    return schemathesis.openapi.from_asgi("/openapi.json", create_app(Predictor.load(text_model)))


@pytest.fixture(scope="module")
def app_schema(tmp_path_factory, small_train, tiny_backbone):
    from transferkit.app import Project
    from transferkit.app.web import create_app

    project = Project(tmp_path_factory.mktemp("fuzz-app") / "project", "image")
    for cls in ("birds", "fruit"):
        project.add_class(cls)
        for f in sorted((small_train / cls).glob("*.png"))[:2]:
            project.add_image(f.read_bytes(), f.name, cls)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(project, model=tiny_backbone))
    # training starts a child process per request and downloads build archives: exercised in test_app.py
    return schema.exclude(path_regex="^/api/(train|runs|download)")


def _fuzz(schema, examples=SETTINGS) -> int:
    """Every operation of the schema, each with EXAMPLES generated requests (schemathesis' Hypothesis strategies,
    run here rather than through its pytest plugin); returns how many operations ran."""
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        @given(case=operation.as_strategy())
        @examples
        def run(case):
            case.call_and_validate(checks=[not_a_server_error])

        run()
    return len(operations)


def test_the_image_server_answers_any_request_without_a_server_error(image_server_schema):
    assert _fuzz(image_server_schema) >= 4  # /health, /model, /monitor, /predict


def test_the_text_server_answers_any_request_without_a_server_error(text_server_schema):
    assert _fuzz(text_server_schema) >= 4


def test_the_app_answers_any_request_without_a_server_error(app_schema):
    assert _fuzz(app_schema) >= 10


def test_the_fuzzing_finds_a_server_error_planted_in_the_model(text_model):
    """The negative control: a model that fails on every prediction must make the fuzzing fail. (Generated image
    uploads are not images, so they never reach a model: the image server's fuzzing covers parsing and limits.)"""
    from transferkit.serve import create_app

    predictor = Predictor.load(text_model)

    class Failing(type(predictor)):
        def predict_scored(self, items):  # what the server's batcher calls
            raise RuntimeError("planted")

    predictor.__class__ = Failing
    with pytest.raises(BaseException, match="planted|500"):
        _fuzz(schemathesis.openapi.from_asgi("/openapi.json", create_app(predictor)).include(path="/predict"),
              settings(SETTINGS, phases=[Phase.explicit, Phase.generate]))  # finding it is enough: no shrinking

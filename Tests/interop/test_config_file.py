"""halid --config: a JSON file defines a custom task with its classes and annotators by token digest."""
import hashlib
import json
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "Deploy", "clients", "python"))
from hali_client import HaliClient, HaliError, pb  # noqa: E402
from conftest import RunningDaemon  # noqa: E402


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "halid.json"
    config.write_text(json.dumps({
        "max_frame_bytes": 100000,
        "tasks": [{"name": "mitosis", "classes": [{"name": "mitotic", "color": "#ff0000", "key": "m"},
                                                   {"name": "not-mitotic"}]}],
        "annotators": [
            {"name": "carol", "token_sha256": hashlib.sha256(b"carol-secret").hexdigest(), "tasks": ["mitosis"]},
            {"name": "dave", "token_sha256": hashlib.sha256(b"dave-secret").hexdigest(), "slides": ["some-other-slide"]},
        ],
    }))
    running = RunningDaemon(tmp_path_factory, "--config", str(config))
    yield running.port
    running.stop()


def test_configured_task_and_annotator(daemon):
    with HaliClient("127.0.0.1", daemon, "carol-secret") as c:
        assert c.welcome.annotator == "carol"
        assert c.welcome.max_frame_bytes == 100000
        state = c.open_session("CMU-1-Small-Region", "mitosis")
        assert [(k.name, k.color, k.key) for k in state.classes] == [("mitotic", "#ff0000", "m"), ("not-mitotic", "#4363d8", "2")]
        assert list(state.slide.level_downsamples) == [1.0]
        with pytest.raises(HaliError) as info:
            c.open_session("CMU-1-Small-Region", "ki67")  # built-in tasks are replaced by the file's
        assert info.value.error.code == pb.ERROR_CODE_NOT_FOUND


def test_annotator_limited_to_other_slides(daemon):
    with HaliClient("127.0.0.1", daemon, "dave-secret") as c:
        with pytest.raises(HaliError) as info:
            c.open_session("CMU-1-Small-Region", "mitosis")
        assert info.value.error.code == pb.ERROR_CODE_PERMISSION_DENIED


def test_token_in_plain_text_is_not_a_digest(daemon):
    with pytest.raises(HaliError) as info:
        HaliClient("127.0.0.1", daemon, hashlib.sha256(b"carol-secret").hexdigest())
    assert info.value.error.code == pb.ERROR_CODE_UNAUTHENTICATED

"""halid --config: a JSON file defines a custom task with its classes and annotators by token digest."""
import hashlib
import json
import os
import subprocess
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


def run_halid(*arguments, timeout=60):
    halid = os.environ.get("HALID", os.path.join(ROOT, ".build", "debug", "halid"))
    return subprocess.run([halid, *arguments], capture_output=True, text=True, timeout=timeout)


def test_misspelt_keys_are_refused_by_name(tmp_path):
    """A misspelt key was ignored silently, leaving the setting at its default."""
    config = tmp_path / "halid.json"
    config.write_text(json.dumps({
        "max_frame_byte": 100000,
        "annotators": [{"name": "erin", "token_sha256": hashlib.sha256(b"e").hexdigest()}],
    }))
    result = run_halid("--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode != 0
    assert 'unknown key "max_frame_byte" (did you mean "max_frame_bytes"?)' in result.stderr
    config.write_text(json.dumps({"annotators": [{"name": "erin", "token": "e"}]}))
    result = run_halid("--config", str(config), "--data-dir", str(tmp_path / "data"))
    assert result.returncode != 0
    assert 'unknown key "annotators[0].token"' in result.stderr


def test_data_dir_that_is_a_file_is_named(tmp_path):
    """A data directory that is a file printed Foundation's raw error."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    result = run_halid("--data-dir", str(blocker), "--listen", "127.0.0.1:0")
    assert result.returncode != 0
    assert f"{blocker}: the data directory is a file, not a directory" in result.stderr, result.stderr
    assert "Cocoa" not in result.stderr


def test_strict_refuses_to_start_and_status_lists_what_is_left_out(tmp_path_factory, tmp_path):
    result = run_halid("--strict", "--no-ingest", "--listen", "127.0.0.1:0", "--slide", str(tmp_path / "missing.svs"),
                       "--data-dir", str(tmp_path / "data"))
    assert result.returncode != 0
    assert "missing.svs" in result.stderr and "strict" in result.stderr
    running = RunningDaemon(tmp_path_factory, "--slide", str(tmp_path / "missing.svs"))
    try:
        hali = os.path.join(os.path.dirname(os.environ.get("HALID", os.path.join(ROOT, ".build", "debug", "halid"))), "hali")
        status = subprocess.run([hali, "status", "--server", running.address, "--token-file", os.path.join(running.data_dir, "token")],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        assert "not served    1:" in status.stdout
        assert "missing.svs" in status.stdout
    finally:
        running.stop()


def test_tls_with_a_self_signed_certificate(tmp_path_factory, tmp_path):
    """Python's ssl against halid --tls-cert/--tls-key: refused without trust, accepted with the certificate."""
    import ssl
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    running = RunningDaemon(tmp_path_factory, "--tls-cert", str(cert), "--tls-key", str(key))
    token = open(os.path.join(running.data_dir, "token")).read().strip()
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            HaliClient("127.0.0.1", running.port, token, tls=True)
        for host in ["127.0.0.1", "localhost"]:
            with HaliClient(host, running.port, token, tls_ca=str(cert)) as c:
                assert c.welcome.annotator == "local"
        hali = os.path.join(os.path.dirname(os.environ.get("HALID", os.path.join(ROOT, ".build", "debug", "halid"))), "hali")
        ok = subprocess.run([hali, "ping", "-n", "3", "--server", running.address, "--token", token, "--tls-ca", str(cert)],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and "3 pings" in ok.stdout, ok.stderr
        refused = subprocess.run([hali, "ping", "-n", "1", "--server", running.address, "--token", token, "--tls"],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "TLS" in refused.stderr, refused.stderr
    finally:
        running.stop()

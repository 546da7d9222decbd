"""serve.py as a client meets it: a subprocess on free ports, spoken to over HTTP and gRPC,
under concurrent clients, bad requests, a full queue and SIGTERM."""

import concurrent.futures
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import REPO, fixture_path, run_script

pytest.importorskip("aiohttp", reason="the [serve] extra (aiohttp) is not installed")
pytest.importorskip("tensorflow_serving", reason="the [serve] extra is not installed")

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_text  # noqa: E402, F401  (registers the export's tokenizer ops)
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

WORDS = "the quick brown fox jumps over a lazy dog while it rains in paris".split()


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A tiny MRPC classifier export (`serving_default` and `pair`)."""
    folder = tmp_path_factory.mktemp("serving") / "export"
    tiny = fixture_path("tiny_ckpt")
    run_script(["export_model.py", f"--bert_config_file={tiny / 'bert_config.json'}",
                f"--vocab_file={tiny / 'vocab.txt'}", f"--export_dir={folder}",
                f"--init_checkpoint={fixture_path('mrpc', 'tiny_mrpc_ckpt') / 'model.ckpt'}",
                "--max_seq_length=64"])
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Served:
    """serve.py in a subprocess: `url`, `grpc_target`, `process`."""

    def __init__(self, export, *flags: str):
        self.port, grpc_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{grpc_port}"
        self.process = subprocess.Popen(
            [sys.executable, "serve.py", f"--export_dir={export}", f"--port={self.port}",
             f"--grpc_port={grpc_port}", "--host=127.0.0.1", "--max_seq_length=64", *flags],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()[1][-3000:]
            with contextlib.suppress(OSError):
                if get(f"{self.url}/readyz")[0] == 200:
                    return
            time.sleep(0.3)
        raise AssertionError("serve.py did not become ready in 120 s")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


def get(url: str) -> tuple[int, dict | str, dict]:
    return call(urllib.request.Request(url))


def post(url: str, body) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(urllib.request.Request(url, data=data, method="POST"))


def call(request) -> tuple[int, dict | str, dict]:
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            status, text, headers = answer.status, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as error:
        status, text, headers = error.code, error.read().decode(), error.headers
    with contextlib.suppress(ValueError):
        text = json.loads(text)
    return status, text, dict(headers)


def metric(server: Served, name: str) -> dict[str, float]:
    """Labels -> value of a Prometheus metric of the server."""
    text = get(f"{server.url}/metrics")[1]
    return {labels: float(value) for labels, value in
            re.findall(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M)}


@pytest.fixture(scope="module")
def server(export):
    served = Served(export, "--max_batch_size=8", "--batch_timeout_ms=30")
    yield served
    assert served.stop() == 0


def test_concurrent_clients_each_get_the_answer_for_their_own_input(server, export):
    """32 clients at once, texts of mixed lengths, 1-3 per request: every answer equals the
    SavedModel called directly on that client's texts, and requests were batched."""
    rng = np.random.default_rng(0)
    requests = [[" ".join(rng.choice(WORDS, rng.integers(1, 40)))
                 for _ in range(rng.integers(1, 4))] for _ in range(32)]
    url = f"{server.url}/v1/models/bert:predict"
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda texts: post(url, {"instances": texts}), requests))
    direct = tf.saved_model.load(str(export)).signatures["serving_default"]
    for texts, (status, body, _) in zip(requests, answers, strict=True):
        assert status == 200, body
        expected = direct(text=tf.constant(texts))
        served = np.array([row["probabilities"] for row in body["predictions"]])
        np.testing.assert_allclose(served, expected["probabilities"].numpy(), atol=1e-5)
        assert [row["predictions"] for row in body["predictions"]] == (
            expected["predictions"].numpy().tolist())
    batches = metric(server, "bert_tf_batches_total")
    assert sum(batches.values()) < 32 and max(int(k.split('"')[1]) for k in batches) > 3


def test_pairs_in_columnar_format_and_a_version_path(server, export):
    status, body, _ = post(f"{server.url}/v1/models/bert/versions/1:predict", {
        "signature_name": "pair", "inputs": {"text_a": ["A cat sat.", "Rain"],
                                              "text_b": ["A feline sat.", "Sun"]}})
    assert status == 200
    expected = tf.saved_model.load(str(export)).signatures["pair"](
        text_a=tf.constant(["A cat sat.", "Rain"]), text_b=tf.constant(["A feline sat.", "Sun"]))
    np.testing.assert_allclose(body["outputs"]["probabilities"],
                               expected["probabilities"].numpy(), atol=1e-5)
    assert get(f"{server.url}/v1/models/bert")[1]["model_version_status"][0]["state"] == (
        "AVAILABLE")
    metadata = get(f"{server.url}/v1/models/bert/metadata")[1]
    assert sorted(metadata["metadata"]["signature_def"]["signature_def"]) == [
        "pair", "serving_default"]


@pytest.mark.parametrize(("path", "body", "status", "message"), [
    (":predict", b"{not json", 400, "JSON Parse error"),
    (":predict", {"signature_name": "serving_default"}, 400, "Missing 'inputs' or 'instances'"),
    (":predict", {"instances": [1]}, 400, "instances[0].text: expected a string"),
    (":predict", {"instances": []}, 400, "non-empty list"),
    (":predict", {"signature_name": "nope", "instances": ["a"]}, 400, '"nope" not found'),
    (":predict", {"signature_name": "pair", "instances": [{"text_a": "a"}]}, 400,
     "expected an object with the inputs"),
    (":predict", b"x" * (12 << 20), 413, "exceeds --max_request_bytes"),
    ("/versions/7:predict", {"instances": ["a"]}, 404, "Specific(bert, 7)"),
])
def test_bad_requests_get_one_json_error_and_the_server_keeps_serving(
        server, path, body, status, message):
    answer = post(f"{server.url}/v1/models/bert{path}", body)
    assert answer[0] == status and message in answer[1]["error"], answer[:2]
    assert post(f"{server.url}/v1/models/other:predict", {"instances": ["a"]})[0] == 404
    assert post(f"{server.url}/v1/models/bert:predict", {"instances": ["still here"]})[0] == 200


def test_grpc_predict_and_metadata_as_tf_serving_clients_call_them(server, export):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(
        grpc.insecure_channel(server.grpc_target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "bert"
    request.model_spec.signature_name = "pair"
    request.inputs["text_a"].CopyFrom(tf.make_tensor_proto(["A cat sat."]))
    request.inputs["text_b"].CopyFrom(tf.make_tensor_proto(["A feline sat."]))
    answer = stub.Predict(request, timeout=60)
    expected = tf.saved_model.load(str(export)).signatures["pair"](
        text_a=tf.constant(["A cat sat."]), text_b=tf.constant(["A feline sat."]))
    np.testing.assert_allclose(tf.make_ndarray(answer.outputs["probabilities"]),
                               expected["probabilities"].numpy(), atol=1e-5)
    assert answer.model_spec.version.value == 1
    metadata_request = get_model_metadata_pb2.GetModelMetadataRequest(
        metadata_field=["signature_def"])
    metadata_request.model_spec.name = "bert"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    stub.GetModelMetadata(metadata_request, timeout=60).metadata["signature_def"].Unpack(
        signatures)
    assert sorted(signatures.signature_def) == ["pair", "serving_default"]
    request.model_spec.name = "other"
    with pytest.raises(grpc.RpcError) as error:
        stub.Predict(request, timeout=60)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_full_queue_gets_503_and_sigterm_answers_what_is_in_flight(export):
    """Requests wait up to 3 s to be batched: four fill the queue, the fifth gets 503 with
    Retry-After; then four more are in flight when SIGTERM comes: all four are answered
    and the server exits 0."""
    served = Served(export, "--max_queue=4", "--max_batch_size=64", "--batch_timeout_ms=3000")
    url = f"{served.url}/v1/models/bert:predict"
    try:
        for then in ("overflow", "sigterm"):
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                waiting = [pool.submit(post, url, {"instances": [f"text {i}"]}) for i in range(4)]
                deadline = time.monotonic() + 30
                while metric(served, "bert_tf_queue_depth").get("", 0) < 4:
                    assert time.monotonic() < deadline, "the requests never queued"
                    time.sleep(0.05)
                if then == "overflow":
                    status, body, headers = post(url, {"instances": ["one too many"]})
                    assert status == 503 and "--max_queue" in body["error"]
                    assert headers["Retry-After"] == "1"
                else:
                    served.process.send_signal(signal.SIGTERM)
                assert [future.result()[0] for future in waiting] == [200] * 4
        assert served.process.wait(timeout=120) == 0
    finally:
        served.stop()

"""serve.py's server: TF Serving's REST (aiohttp) and gRPC (grpcio) APIs on one model.

REST, as TF Serving's:
    GET  /v1/models/NAME[/versions/N]            the version's status
    GET  /v1/models/NAME[/versions/N]/metadata   the signatures (SignatureDefMap JSON)
    POST /v1/models/NAME[/versions/N]:predict    row or columnar JSON (serving/protocol.py)
    errors: {"error": "..."} with 400, 404, 413 (body over --max_request_bytes) or 503
    (not ready, stopping, or --max_queue requests waiting: with Retry-After)
and `GET /healthz` (alive), `GET /readyz` (200 once the model is loaded and warmed up),
`GET /metrics` (Prometheus text: requests by code, latency, batch sizes, queue depth).
gRPC: tensorflow.serving.PredictionService's `Predict` and `GetModelMetadata`.

Why these parts: aiohttp is a maintained asyncio HTTP server and client whose handlers
await the batcher without a thread per request, and it parses HTTP itself; grpcio's
`grpc.aio` runs on the same event loop, and `tensorflow-serving-api` supplies TF Serving's
own protos, so existing TF Serving clients work unchanged. The model runs in one thread
(serving/batching.py); the event loop never blocks on it. SIGTERM: both servers stop
accepting, requests in flight are answered, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import json
import signal
import time

import grpc
import tensorflow as tf
from absl import logging
from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    model_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from bert_tf.serving.batching import Batcher, QueueFull
from bert_tf.serving.model import RequestError, ServedModel
from bert_tf.serving.protocol import PredictRequest, parse_predict, response

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclasses.dataclass
class ServerSettings:
    """What serve.py's flags set; their defaults and help live in jobs/serve.py's
    ServeOptions, the one place they are declared."""

    export_dir: str
    model_name: str
    host: str
    port: int
    grpc_port: int
    max_batch_size: int
    batch_timeout_ms: float
    max_queue: int
    max_request_bytes: int
    max_seq_length: int
    shutdown_timeout: float


class Metrics:
    """Counters in Prometheus' text format."""

    def __init__(self):
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum, self.latency_count = 0.0, 0

    def observe(self, api: str, code: int, seconds: float) -> None:
        """Counts one answered request."""
        self.requests[(api, code)] += 1
        self.latency[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
        self.latency_count += 1

    def text(self, batcher: Batcher | None) -> str:
        """The exposition text of /metrics."""
        lines = ["# TYPE bert_tf_requests_total counter"]
        lines += [f'bert_tf_requests_total{{api="{api}",code="{code}"}} {count}'
                  for (api, code), count in sorted(self.requests.items())]
        lines.append("# TYPE bert_tf_request_seconds histogram")
        running = 0
        for bound, count in zip([*LATENCY_BUCKETS, "+Inf"], self.latency, strict=True):
            running += count
            lines.append(f'bert_tf_request_seconds_bucket{{le="{bound}"}} {running}')
        lines += [f"bert_tf_request_seconds_sum {self.latency_sum}",
                  f"bert_tf_request_seconds_count {self.latency_count}",
                  "# TYPE bert_tf_batch_size counter"]
        sizes = batcher.batch_sizes if batcher else {}
        lines += [f'bert_tf_batches_total{{size="{size}"}} {count}'
                  for size, count in sorted(sizes.items())]
        lines += ["# TYPE bert_tf_queue_depth gauge",
                  f"bert_tf_queue_depth {len(batcher.pending) if batcher else 0}"]
        return "\n".join(lines) + "\n"


class Server:
    """The model, its batcher and both APIs; `serve` runs them until SIGTERM/SIGINT."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.model: ServedModel | None = None
        self.batcher: Batcher | None = None
        self.accepting = True
        self.metrics = Metrics()

    # --- the model ----------------------------------------------------------------------

    def check_model(self, name: str, version: str | int | None) -> ServedModel:
        """The served model, if `name` (and `version`) are it: else 404; 503 until ready."""
        if name != self.settings.model_name:
            raise RequestError(f"Servable not found for request: Latest({name})", 404)
        if self.model is None:
            raise RequestError("the model is still loading", 503)
        if version not in (None, "") and str(version) != str(self.model.version):
            raise RequestError(f"Servable not found for request: Specific({name}, {version})",
                               404)
        return self.model

    async def predict(self, request: PredictRequest) -> dict:
        """The outputs for a parsed request's rows, batched with others (both APIs)."""
        if not self.accepting:
            raise RequestError("the server is stopping", 503)
        try:
            return await self.batcher.submit(request.signature.name, request.columns,
                                             request.length())
        except QueueFull as error:
            raise RequestError(str(error), 503) from None
        except tf.errors.OpError as error:
            raise RequestError(f"{type(error).__name__}: {error.message}") from None

    # --- REST ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The REST routes (see the module docstring)."""
        app = web.Application(client_max_size=self.settings.max_request_bytes,
                              middlewares=[self.errors_as_json])
        model = "/v1/models/{name:[^/:]+}"
        version = model + "/versions/{version:[0-9]+}"
        app.add_routes([
            web.get("/healthz", self.healthz), web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics_text),
            web.get(model, self.status), web.get(version, self.status),
            web.get(model + "/metadata", self.metadata),
            web.get(version + "/metadata", self.metadata),
            web.post(model + ":predict", self.rest_predict),
            web.post(version + ":predict", self.rest_predict),
        ])
        return app

    @web.middleware
    async def errors_as_json(self, request: web.Request, handler) -> web.StreamResponse:
        started = time.monotonic()
        try:
            answer = await handler(request)
        except RequestError as error:
            headers = {"Retry-After": "1"} if error.status == 503 else None
            answer = web.json_response({"error": str(error)}, status=error.status,
                                       headers=headers)
        except web.HTTPException as error:  # aiohttp's own: 404 route, 405, 413 body size
            message = error.text or error.reason
            if error.status == 413:
                message = (f"the request body exceeds --max_request_bytes="
                           f"{self.settings.max_request_bytes}")
            answer = web.json_response({"error": message}, status=error.status)
        if request.path.startswith("/v1/"):
            self.metrics.observe("rest", answer.status, time.monotonic() - started)
        return answer

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        ready = self.model is not None and self.accepting
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def metrics_text(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics.text(self.batcher),
                            content_type="text/plain", charset="utf-8")

    async def status(self, request: web.Request) -> web.Response:
        model = self.check_model(request.match_info["name"], request.match_info.get("version"))
        return web.json_response({"model_version_status": [{
            "version": str(model.version), "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""}}]})

    async def metadata(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        model = self.check_model(name, request.match_info.get("version"))
        signatures = get_model_metadata_pb2.SignatureDefMap(signature_def=model.signature_defs)
        return web.json_response({
            "model_spec": {"name": name, "signature_name": "", "version": str(model.version)},
            "metadata": {"signature_def": json_format.MessageToDict(
                signatures, preserving_proto_field_name=True)}})

    async def rest_predict(self, request: web.Request) -> web.Response:
        model = self.check_model(request.match_info["name"], request.match_info.get("version"))
        parsed = parse_predict(await request.read(), model.signature)
        outputs = await self.predict(parsed)
        return web.json_response(response(parsed, outputs),
                                 dumps=lambda value: json.dumps(value, ensure_ascii=False))

    # --- running ------------------------------------------------------------------------

    async def serve(self) -> None:
        """Starts both APIs, loads and warms the model, serves until SIGTERM or SIGINT,
        then answers what is in flight and returns."""
        settings, loop = self.settings, asyncio.get_running_loop()
        stop = asyncio.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stop.set)
        runner = web.AppRunner(self.app(), handle_signals=False,
                               shutdown_timeout=settings.shutdown_timeout)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        grpc_server = None
        if settings.grpc_port:
            grpc_server = grpc.aio.server(options=[
                ("grpc.max_receive_message_length", settings.max_request_bytes)])
            prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
                PredictionService(self), grpc_server)
            grpc_server.add_insecure_port(f"{settings.host}:{settings.grpc_port}")
            await grpc_server.start()
        model = await loop.run_in_executor(None, load_and_warm_up, settings.export_dir)
        self.batcher = Batcher(model.run, max_batch_size=settings.max_batch_size,
                               batch_timeout=settings.batch_timeout_ms / 1000,
                               max_queue=settings.max_queue,
                               max_seq_length=settings.max_seq_length)
        batching = asyncio.create_task(self.batcher.run_forever())
        self.model = model
        logging.info("Serving %s version %d (%s): REST on port %d, gRPC on port %s",
                     settings.model_name, model.version, model.path, settings.port,
                     settings.grpc_port or "off")
        print(f"ready: REST {settings.port} gRPC {settings.grpc_port}", flush=True)
        await stop.wait()
        logging.info("Stopping: answering the requests in flight")
        self.accepting = False
        if grpc_server is not None:
            await grpc_server.stop(settings.shutdown_timeout)
        await runner.cleanup()
        batching.cancel()


def load_and_warm_up(export_dir: str) -> ServedModel:
    """The export, loaded and run once per signature (readiness waits for this)."""
    model = ServedModel(export_dir)
    model.warm_up()
    return model


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """TF Serving's gRPC PredictionService: Predict and GetModelMetadata."""

    def __init__(self, server: Server):
        self.server = server

    async def Predict(self, request: predict_pb2.PredictRequest, context):  # noqa: N802
        try:
            spec = request.model_spec
            model = self.server.check_model(spec.name, spec.version.value or None)
            signature = model.signature(spec.signature_name or None)
            if set(request.inputs) != set(signature.inputs):
                raise RequestError(f"inputs: expected {sorted(signature.inputs)} of signature "
                                   f"{signature.name!r}, got {sorted(request.inputs)}")
            columns = {name: tf.make_ndarray(proto).reshape(-1)
                       for name, proto in request.inputs.items()}
            if len({len(column) for column in columns.values()}) != 1 or not len(
                    next(iter(columns.values()))):
                raise RequestError("inputs: every input needs the same, non-zero, row count")
            parsed = PredictRequest(signature, columns, row_format=False)
            outputs = await self.server.predict(parsed)
        except RequestError as error:
            await context.abort(GRPC_CODES.get(error.status, grpc.StatusCode.INVALID_ARGUMENT),
                                str(error))
        answer = predict_pb2.PredictResponse()
        answer.model_spec.CopyFrom(model_spec(request.model_spec.name, model.version,
                                              signature.name))
        for name in request.output_filter or outputs:
            answer.outputs[name].CopyFrom(tf.make_tensor_proto(outputs[name]))
        return answer

    async def GetModelMetadata(self, request, context):  # noqa: N802
        try:
            model = self.server.check_model(request.model_spec.name,
                                            request.model_spec.version.value or None)
            if list(request.metadata_field) != ["signature_def"]:
                raise RequestError("metadata_field: only 'signature_def' is served")
        except RequestError as error:
            await context.abort(GRPC_CODES.get(error.status, grpc.StatusCode.INVALID_ARGUMENT),
                                str(error))
        answer = get_model_metadata_pb2.GetModelMetadataResponse()
        answer.model_spec.CopyFrom(model_spec(request.model_spec.name, model.version, ""))
        answer.metadata["signature_def"].Pack(
            get_model_metadata_pb2.SignatureDefMap(signature_def=model.signature_defs))
        return answer


GRPC_CODES = {400: grpc.StatusCode.INVALID_ARGUMENT, 404: grpc.StatusCode.NOT_FOUND,
              503: grpc.StatusCode.UNAVAILABLE}


def model_spec(name: str, version: int, signature_name: str) -> model_pb2.ModelSpec:
    """The ModelSpec a gRPC answer carries."""
    spec = model_pb2.ModelSpec(name=name, signature_name=signature_name)
    spec.version.value = version
    return spec

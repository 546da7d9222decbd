"""serve.py's job: answer live requests with an export_model.py SavedModel.

TF Serving's REST and gRPC APIs, dynamic batching, health, readiness and metrics
(serving/server.py); `serve.py --export_dir=...` then, e.g.,

    curl -d '{"instances": ["a sentence"]}' localhost:8501/v1/models/bert:predict
"""

from __future__ import annotations

import asyncio
import dataclasses

from bert_tf.errors import UsageError
from bert_tf.options import JobOptions, option


@dataclasses.dataclass(kw_only=True)
class ServeOptions(JobOptions):
    """The flags of serve.py."""

    export_dir: str = option(help="An export_model.py SavedModel folder, or a TF Serving base "
                                  "folder of numeric versions (the newest is served).",
                             required=True)
    model_name: str = option("bert", "The model's name in the URLs and gRPC model_spec.")
    host: str = option("0.0.0.0", "The address both APIs listen on.")
    port: int = option(8501, "The REST API's port.")
    grpc_port: int = option(8500, "The gRPC API's port (0: no gRPC).")
    max_batch_size: int = option(32, "Examples run together at most.")
    batch_timeout_ms: float = option(5.0, "How long a request waits for others to batch "
                                          "with.")
    max_queue: int = option(256, "Requests waiting for the model at most; more get 503 with "
                                 "Retry-After.")
    max_request_bytes: int = option(8 << 20, "A larger request body gets 413.")
    max_seq_length: int = option(128, "The export's max_seq_length (export_model.py's flag): "
                                      "requests are grouped into its length buckets.")
    shutdown_timeout: float = option(60.0, "On SIGTERM, seconds to finish what is in flight.")


def run(options: ServeOptions) -> None:
    """Serves until SIGTERM or SIGINT, then finishes the requests in flight."""
    from bert_tf.serving.server import Server, ServerSettings  # TensorFlow, aiohttp, grpcio

    for flag in ("max_batch_size", "max_queue", "max_request_bytes", "max_seq_length"):
        if getattr(options, flag) < 1:
            raise UsageError(f"{flag} must be at least 1, found {getattr(options, flag)}")
    if options.batch_timeout_ms < 0:
        raise UsageError(f"batch_timeout_ms must be >= 0, found {options.batch_timeout_ms}")
    settings = ServerSettings(**{field.name: getattr(options, field.name)
                                 for field in dataclasses.fields(ServerSettings)})
    asyncio.run(Server(settings).serve())

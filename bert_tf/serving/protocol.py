"""TF Serving's REST predict protocol: request JSON -> columns, outputs -> response JSON.

Row format: `{"signature_name": ..., "instances": [...]}`, one instance per example: the
value itself when the signature has one input, else an object of its inputs. Answered
with `{"predictions": [...]}`: per example the value (one output) or an object of the
outputs. Columnar format: `{"inputs": ...}`, the list of values (one input) or an object
of lists; answered with `{"outputs": ...}` the same way. A string may be given as
`{"b64": "..."}`; string outputs come back as text (base64 `{"b64": ...}` for outputs
whose name ends in `_bytes`, as TF Serving does). Every error is a `RequestError` with
the HTTP status TF Serving gives it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json

import numpy as np

from bert_tf.serving.model import RequestError, Signature


@dataclasses.dataclass
class PredictRequest:
    """A parsed request: its signature, its columns (input name -> [rows] values) and
    whether it came in row format."""

    signature: Signature
    columns: dict[str, np.ndarray]
    row_format: bool

    @property
    def rows(self) -> int:
        """The request's examples."""
        return len(next(iter(self.columns.values())))

    def length(self) -> int:
        """The request's longest example in whitespace words (summed over its inputs): what
        the batcher groups requests by."""
        words = [sum(len(column[row].split()) for column in self.columns.values())
                 for row in range(self.rows)]
        return max(words)


def parse_predict(body: bytes, signature_of) -> PredictRequest:
    """The request in `body`; `signature_of(name)` finds the signature (a 400 if none)."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise RequestError(f"JSON Parse error: {error}") from None
    if not isinstance(request, dict):
        raise RequestError("JSON Value: the request body must be an object with "
                           "'instances' or 'inputs'")
    name = request.get("signature_name")
    if name is not None and not isinstance(name, str):
        raise RequestError("'signature_name' must be a string")
    signature = signature_of(name)
    if ("instances" in request) == ("inputs" in request):
        raise RequestError("Missing 'inputs' or 'instances' key" if "inputs" not in request
                           else "Not both of 'instances' and 'inputs' may be given")
    if "instances" in request:
        columns = instance_columns(request["instances"], signature)
    else:
        columns = input_columns(request["inputs"], signature)
    return PredictRequest(signature, columns, "instances" in request)


def instance_columns(instances, signature: Signature) -> dict[str, np.ndarray]:
    """Row format -> columns."""
    if not isinstance(instances, list) or not instances:
        raise RequestError("'instances' must be a non-empty list")
    names = list(signature.inputs)
    columns: dict[str, list] = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if len(names) == 1 and not (isinstance(instance, dict) and "b64" not in instance):
            instance = {names[0]: instance}
        if not isinstance(instance, dict) or set(instance) != set(names):
            raise RequestError(f"instances[{index}]: expected an object with the inputs "
                               f"{names} of signature {signature.name!r}")
        for name in names:
            columns[name].append(text_value(instance[name], f"instances[{index}].{name}"))
    return {name: np.array(values, dtype=object) for name, values in columns.items()}


def input_columns(inputs, signature: Signature) -> dict[str, np.ndarray]:
    """Columnar format -> columns (every input the same number of rows)."""
    names = list(signature.inputs)
    if len(names) == 1 and not isinstance(inputs, dict):
        inputs = {names[0]: inputs}
    if not isinstance(inputs, dict) or set(inputs) != set(names):
        raise RequestError(f"'inputs': expected an object with the inputs {names} of "
                           f"signature {signature.name!r}")
    columns = {}
    for name in names:
        values = inputs[name]
        if not isinstance(values, list) or not values:
            raise RequestError(f"inputs.{name}: expected a non-empty list")
        columns[name] = np.array([text_value(value, f"inputs.{name}[{index}]")
                                  for index, value in enumerate(values)], dtype=object)
    if len({len(column) for column in columns.values()}) > 1:
        raise RequestError("'inputs': every input must have the same number of rows")
    return columns


def text_value(value, where: str) -> bytes:
    """A string input: text, or `{"b64": ...}`."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except binascii.Error:
            raise RequestError(f"{where}: 'b64' is not valid base64") from None
    raise RequestError(f"{where}: expected a string (or {{\"b64\": ...}}), got "
                       f"{type(value).__name__}")


def json_value(name: str, value):
    """A numpy output value as TF Serving writes it."""
    if isinstance(value, np.ndarray):
        return [json_value(name, item) for item in value]
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", errors="replace")
    return value.item() if isinstance(value, np.generic) else value


def response(request: PredictRequest, outputs: dict[str, np.ndarray],
             output_filter: list[str] | None = None) -> dict:
    """`{"predictions": ...}` (row format) or `{"outputs": ...}` (columnar)."""
    names = sorted(output_filter or outputs)
    if request.row_format:
        rows = [{name: json_value(name, outputs[name][row]) for name in names}
                for row in range(request.rows)]
        return {"predictions": [row[names[0]] for row in rows] if len(names) == 1 else rows}
    columns = {name: json_value(name, outputs[name]) for name in names}
    return {"outputs": columns[names[0]] if len(names) == 1 else columns}

"""export_model.py's job: a checkpoint -> a serving SavedModel that takes raw text, or
(`--format=hub`) TF Hub's preprocessor + encoder pair (hub_export.py).

The kind (classifier, squad or embeddings) follows the checkpoint's variables unless
`--kind` says otherwise; see export.py for the signatures and their outputs.
"""

from __future__ import annotations

import dataclasses

from bert_tf import file_io
from bert_tf.errors import UsageError
from bert_tf.interop import export, hub_export
from bert_tf.options import JobOptions, bucketing_option, option
from bert_tf.training.bucketing import Bucketing


@dataclasses.dataclass(kw_only=True)
class ExportOptions(JobOptions):
    """The flags of export_model.py."""

    bert_config_file: str = option(help="The config json file of the model.", required=True)
    vocab_file: str = option(help="The vocabulary file of the model.", required=True)
    init_checkpoint: str = option(help="The checkpoint to export.", required=True)
    export_dir: str = option(help="Where to write the SavedModel.", required=True)
    do_lower_case: bool = option(True, "Whether to lower case the input text.")
    max_seq_length: int = option(128, "Sequence length of the exported model.")
    kind: str | None = option(None, "Override the kind found in the checkpoint.",
                              choices=export.KINDS)
    format: str = option("serving", "serving: one SavedModel, text in, the model's outputs "
                                    "out (export.py); hub: TF Hub's preprocessor + encoder "
                                    "pair of the encoder (hub_export.py).",
                         choices=["serving", "hub"])
    bucketing: str = bucketing_option()


def output_lock(options: ExportOptions):
    """Holds `export_dir`, which must be new, empty or an earlier export of this format
    (file_io.holding_export)."""
    entries = hub_export.HUB_ENTRIES if options.format == "hub" else file_io.SAVED_MODEL_ENTRIES
    return file_io.holding_export(options.export_dir, "export_dir", entries)


def run(options: ExportOptions) -> str:
    """Builds the serving module (or the hub pair) and writes it; returns the export
    folder."""
    if options.format == "hub":
        if options.kind not in (None, "embeddings"):
            raise UsageError(f"kind: --format=hub exports the encoder (embeddings), not a "
                             f"{options.kind} head")
        export_dir = hub_export.export_hub(
            options.bert_config_file, options.vocab_file, options.init_checkpoint,
            options.do_lower_case, options.max_seq_length, options.export_dir)
        print(f"Exported a TF Hub preprocessor and encoder to {export_dir}")
        return export_dir
    module = export.build_module(
        options.bert_config_file, options.vocab_file, options.init_checkpoint,
        options.do_lower_case, options.max_seq_length, options.kind,
        bucketed=Bucketing(options.bucketing, options.max_seq_length).buckets(is_training=False),
    )
    export_dir = export.export(module, options.export_dir)
    print(f"Exported a {module.kind} model to {export_dir}")
    return export_dir

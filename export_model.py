"""Exports a checkpoint as a serving SavedModel that takes raw text (tokenization inside).

    python export_model.py --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --init_checkpoint=/tmp/mrpc_output/model.ckpt-343 \
        --max_seq_length=128 --export_dir=/tmp/mrpc_serving

The kind (classifier, squad or embeddings) follows the checkpoint's variables unless --kind
says otherwise; see bert_tf/export.py for the signatures and their outputs.
"""


from absl import app, flags

from bert_tf import errors, export, file_io

flags.DEFINE_string("bert_config_file", None, "The config json file of the model.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file of the model.")
flags.DEFINE_string("init_checkpoint", None, "The checkpoint to export.")
flags.DEFINE_string("export_dir", None, "Where to write the SavedModel.")
flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text.")
flags.DEFINE_integer("max_seq_length", 128, "Sequence length of the exported model.")
flags.DEFINE_enum("kind", None, list(export.KINDS), "Override the kind found in the checkpoint.")
FLAGS = flags.FLAGS


def main(_):
    def export_model():
        module = export.build_module(
            FLAGS.bert_config_file, FLAGS.vocab_file, FLAGS.init_checkpoint,
            FLAGS.do_lower_case, FLAGS.max_seq_length, FLAGS.kind,
        )
        with file_io.holding_output(FLAGS.export_dir.rstrip("/"), "export_dir", as_file=True):
            print(f"Exported a {module.kind} model to {export.export(module, FLAGS.export_dir)}")

    errors.run_script("export_model.py", export_model)


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["bert_config_file", "vocab_file", "init_checkpoint", "export_dir"]
    )
    app.run(main)

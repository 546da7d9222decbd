"""Extracts per-token activations of chosen layers as JSON lines, as the original
extract_features.py.

    echo 'Who was Jim Henson ? ||| Jim Henson was a puppeteer' > /tmp/input.txt
    python extract_features.py --input_file=/tmp/input.txt --output_file=/tmp/output.jsonl \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --layers=-1,-2,-3,-4 \
        --max_seq_length=128 --batch_size=8
"""


from absl import app, flags

from bert_tf import errors, file_io, run_flags
from bert_tf.tasks import extract

flags.DEFINE_string("input_file", None, "Text input, one example per line (a ||| b for pairs).")
flags.DEFINE_string("output_file", None, "JSON-lines output.")
flags.DEFINE_string("layers", "-1,-2,-3,-4", "Comma-separated layer indexes.")
flags.DEFINE_string("bert_config_file", None, "The config json file of the pre-trained model.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum total input sequence length.")
flags.DEFINE_string("init_checkpoint", None, "Initial checkpoint (usually a pre-trained model).")
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text.")
flags.DEFINE_integer("batch_size", 32, "Batch size for predictions.")
flags.DEFINE_bool("use_one_hot_embeddings", False, "Accepted for compatibility (no effect).")
run_flags.define_run_flags()
FLAGS = flags.FLAGS


def main(_):
    def extract_features():
        options = run_flags.options_from_flags(extract.ExtractOptions, FLAGS)
        with file_io.holding_output(options.output_file, "output_file"):
            count = extract.run(options, run_flags.strategy_from_flags(FLAGS))
        print(f"Wrote {count} lines to {options.output_file}")

    errors.run_script("extract_features.py", extract_features)


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["input_file", "output_file", "vocab_file", "bert_config_file", "init_checkpoint"]
    )
    app.run(main)

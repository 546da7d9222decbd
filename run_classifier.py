"""Fine-tunes BERT on a GLUE task (or XNLI), as the original run_classifier.py.

    python run_classifier.py --task_name=MRPC --do_train=true --do_eval=true \
        --data_dir=$GLUE_DIR/MRPC --vocab_file=$BERT_BASE_DIR/vocab.txt \
        --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --max_seq_length=128 \
        --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3.0 \
        --output_dir=/tmp/mrpc_output/

Tasks: cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli, xnli. The original flags keep
their names and defaults; the additions are in bert_tf/run_flags.py (and --xnli_language).
"""


from absl import app, flags

from bert_tf import run_flags
from bert_tf.tasks import classifier

flags.DEFINE_string("data_dir", None, "The input data dir. Should contain the .tsv files.")
flags.DEFINE_string("bert_config_file", None, "The config json file of the pre-trained model.")
flags.DEFINE_string("task_name", None, "The name of the task to train.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_string("output_dir", None, "The output directory for checkpoints and results.")
flags.DEFINE_string("init_checkpoint", None, "Initial checkpoint (usually a pre-trained model).")
flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text.")
flags.DEFINE_integer("max_seq_length", 128, "Maximum total input sequence length.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_bool("do_predict", False, "Whether to run the model on the test set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predict.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training epochs to perform.")
flags.DEFINE_float("warmup_proportion", 0.1, "Proportion of training for linear warmup.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "AdamWeightDecay (original) or LAMB.")
flags.DEFINE_string("xnli_language", "zh", "XNLI: the language of the dev/test examples kept.")
run_flags.define_run_flags()
FLAGS = flags.FLAGS


def main(_):
    run_flags.run_job("run_classifier.py", classifier.ClassifierOptions, classifier.run, FLAGS)


if __name__ == "__main__":
    flags.mark_flags_as_required(
        ["data_dir", "task_name", "vocab_file", "bert_config_file", "output_dir"]
    )
    app.run(main)

"""Fine-tunes and predicts SQuAD v1.1 / v2.0, as the original run_squad.py.

    python run_squad.py --vocab_file=$BERT_BASE_DIR/vocab.txt \
        --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --do_train=True \
        --train_file=$SQUAD_DIR/train-v1.1.json --do_predict=True \
        --predict_file=$SQUAD_DIR/dev-v1.1.json --train_batch_size=12 --learning_rate=3e-5 \
        --num_train_epochs=2.0 --max_seq_length=384 --doc_stride=128 --output_dir=/tmp/squad/

Writes predictions.json, nbest_predictions.json (and null_odds.json for v2.0) as the
original, plus eval_results.json with the official metrics when the predict file has
answers. Score any predictions with `python -m bert_tf.tasks.squad_eval DATA PREDICTIONS`.
"""


from absl import app, flags

from bert_tf import run_flags
from bert_tf.tasks import squad_run

flags.DEFINE_string("bert_config_file", None, "The config json file of the pre-trained model.")
flags.DEFINE_string("vocab_file", None, "The vocabulary file that the BERT model was trained on.")
flags.DEFINE_string("output_dir", None, "The output directory for checkpoints and predictions.")
flags.DEFINE_string("train_file", None, "SQuAD json for training, e.g. train-v1.1.json")
flags.DEFINE_string("predict_file", None, "SQuAD json for predictions, e.g. dev-v1.1.json")
flags.DEFINE_string("init_checkpoint", None, "Initial checkpoint (usually a pre-trained model).")
flags.DEFINE_bool("do_lower_case", True, "Whether to lower case the input text.")
flags.DEFINE_integer("max_seq_length", 384, "Maximum total input sequence length.")
flags.DEFINE_integer("doc_stride", 128, "Stride between chunks of a long document.")
flags.DEFINE_integer("max_query_length", 64, "Maximum number of question tokens.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_predict", False, "Whether to run eval on the dev set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("predict_batch_size", 8, "Total batch size for predictions.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
flags.DEFINE_float("num_train_epochs", 3.0, "Total number of training epochs to perform.")
flags.DEFINE_float("warmup_proportion", 0.1, "Proportion of training for linear warmup.")
flags.DEFINE_integer("n_best_size", 20, "Total number of n-best predictions to generate.")
flags.DEFINE_integer("max_answer_length", 30, "Maximum length of an answer, in word pieces.")
flags.DEFINE_bool("verbose_logging", False, "Accepted for compatibility.")
flags.DEFINE_bool("version_2_with_negative", False, "SQuAD 2.0: some questions have no answer.")
flags.DEFINE_float("null_score_diff_threshold", 0.0, "Predict null if null_score - "
                   "best_non_null is greater than the threshold.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "AdamWeightDecay (original) or LAMB.")
run_flags.define_run_flags()
FLAGS = flags.FLAGS


def main(_):
    run_flags.run_job("run_squad.py", squad_run.SquadOptions, squad_run.run, FLAGS)


if __name__ == "__main__":
    flags.mark_flags_as_required(["vocab_file", "bert_config_file", "output_dir"])
    app.run(main)

"""Masked-LM + next-sentence pretraining, as the original run_pretraining.py.

    python run_pretraining.py --input_file=out/data.tfrecord --output_dir=out/pretraining \
        --do_train=True --do_eval=True --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --train_batch_size=32 \
        --max_seq_length=128 --max_predictions_per_seq=20 --num_train_steps=20 \
        --num_warmup_steps=10 --learning_rate=2e-5

The original flags keep their names and defaults; the additions are listed in
bert_tf/run_flags.py. Checkpoints are `output_dir/model.ckpt-N` in the original layout; a
rerun of the same command resumes from the latest one.
"""


from absl import app, flags

from bert_tf import run_flags
from bert_tf.tasks import pretraining

flags.DEFINE_string("bert_config_file", None, "The config json file of the pre-trained model.")
flags.DEFINE_string("input_file", None,
                    "Input TF example files (can be a glob or comma separated).")
flags.DEFINE_string("output_dir", None, "The output directory for checkpoints and results.")
flags.DEFINE_string("init_checkpoint", None, "Initial checkpoint (usually a pre-trained model).")
flags.DEFINE_integer("max_seq_length", 128, "Maximum total input sequence length.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum masked LM predictions per sequence.")
flags.DEFINE_bool("do_train", False, "Whether to run training.")
flags.DEFINE_bool("do_eval", False, "Whether to run eval on the dev set.")
flags.DEFINE_integer("train_batch_size", 32, "Total batch size for training.")
flags.DEFINE_integer("eval_batch_size", 8, "Total batch size for eval.")
flags.DEFINE_float("learning_rate", 5e-5, "The initial learning rate for Adam.")
flags.DEFINE_integer("num_train_steps", 100000, "Number of training steps.")
flags.DEFINE_integer("num_warmup_steps", 10000, "Number of warmup steps.")
flags.DEFINE_integer("max_eval_steps", 100, "Maximum number of eval steps.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "AdamWeightDecay (original) or LAMB.")
flags.DEFINE_bool("dynamic_masking", False, "RoBERTa: draw a fresh mask each time a record "
                  "is read (records from create_pretraining_data.py --masking=dynamic).")
flags.DEFINE_string("vocab_file", None, "With dynamic_masking: the vocabulary of the records.")
flags.DEFINE_float("masked_lm_prob", 0.15, "With dynamic_masking: the masking rate.")
flags.DEFINE_bool("do_whole_word_mask", False, "With dynamic_masking: mask whole words.")
flags.DEFINE_integer("ngram_masking", 1, "With dynamic_masking: spans of up to this many "
                     "words, P(n) ~ 1/n (ALBERT).")
flags.DEFINE_bool("nsp", True, "Train next-sentence prediction (false: masked LM alone, as "
                  "RoBERTa; for records made with --packing=full_sentences/doc_sentences).")
run_flags.define_run_flags()
FLAGS = flags.FLAGS


def main(_):
    run_flags.run_job("run_pretraining.py", pretraining.PretrainingOptions, pretraining.run, FLAGS)


if __name__ == "__main__":
    flags.mark_flags_as_required(["bert_config_file", "input_file", "output_dir"])
    app.run(main)

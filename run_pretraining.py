"""Masked-LM + next-sentence pretraining, as the original run_pretraining.py.

    python run_pretraining.py --input_file=out/data.tfrecord --output_dir=out/pretraining \
        --do_train=True --do_eval=True --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --train_batch_size=32 \
        --max_seq_length=128 --max_predictions_per_seq=20 --num_train_steps=20 \
        --num_warmup_steps=10 --learning_rate=2e-5

The flags are the fields of bert_tf.jobs.run_pretraining.PretrainingOptions: the original's
names and defaults, then additions. Checkpoints are `output_dir/model.ckpt-N` in the
original layout; a rerun of the same command resumes from the latest one.
"""

from bert_tf.jobs import script, stages
from bert_tf.jobs.run_pretraining import PretrainingOptions, run

if __name__ == "__main__":
    script.main("run_pretraining.py", PretrainingOptions, run, stages.hold_output_dir)

"""Fine-tunes BERT on a GLUE task (or XNLI), as the original run_classifier.py.

    python run_classifier.py --task_name=MRPC --do_train=true --do_eval=true \
        --data_dir=$GLUE_DIR/MRPC --vocab_file=$BERT_BASE_DIR/vocab.txt \
        --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --max_seq_length=128 \
        --train_batch_size=32 --learning_rate=2e-5 --num_train_epochs=3.0 \
        --output_dir=/tmp/mrpc_output/

Tasks: cola, sst-2, mrpc, sts-b, qqp, mnli, qnli, rte, wnli, xnli. The flags are the
fields of bert_tf.jobs.run_classifier.ClassifierOptions: the original's names and defaults,
then additions.
"""

from bert_tf.jobs import script, stages
from bert_tf.jobs.run_classifier import ClassifierOptions, run

if __name__ == "__main__":
    script.main("run_classifier.py", ClassifierOptions, run, stages.hold_output_dir)

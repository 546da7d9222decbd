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

from bert_tf.jobs import script, stages
from bert_tf.jobs.run_squad import SquadOptions, run

if __name__ == "__main__":
    script.main("run_squad.py", SquadOptions, run, stages.hold_output_dir)

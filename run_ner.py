"""Fine-tunes BERT for named-entity recognition (CoNLL-2003, or any CoNLL-style file).

    python run_ner.py --data_dir=$CONLL_DIR --vocab_file=$BERT_BASE_DIR/vocab.txt \
        --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --do_lower_case=False \
        --do_train=true --do_eval=true --do_predict=true --max_seq_length=128 \
        --train_batch_size=32 --learning_rate=5e-5 --num_train_epochs=3.0 \
        --output_dir=/tmp/ner_output/

`data_dir` holds train.txt, dev.txt and test.txt (word first, tag last; IOB1, IOB2, IOBES
or BMES). The flags are run_classifier.py's plus --doc_stride and --document_context (the
fields of bert_tf.jobs.run_ner.NerOptions). Score any predictions file with
`python -m bert_tf.tasks.ner_eval output_dir/dev_predictions.txt` (conlleval's report).
"""

from bert_tf.jobs import script, stages
from bert_tf.jobs.run_ner import NerOptions, run

if __name__ == "__main__":
    script.main("run_ner.py", NerOptions, run, stages.hold_output_dir)

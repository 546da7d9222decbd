"""Exports a checkpoint as a serving SavedModel that takes raw text (tokenization inside).

    python export_model.py --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --init_checkpoint=/tmp/mrpc_output/model.ckpt-343 \
        --max_seq_length=128 --export_dir=/tmp/mrpc_serving

The kind (classifier, squad or embeddings) follows the checkpoint's variables unless --kind
says otherwise; see bert_tf/export_model.py for the signatures and their outputs.
"""

from bert_tf.jobs import script
from bert_tf.jobs.export_model import ExportOptions, output_lock, run

if __name__ == "__main__":
    script.main("export_model.py", ExportOptions, run, output_lock)

"""Exports a checkpoint as a serving SavedModel that takes raw text (tokenization inside).

    python export_model.py --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --init_checkpoint=/tmp/mrpc_output/model.ckpt-343 \
        --max_seq_length=128 --export_dir=/tmp/mrpc_serving

The kind (classifier, squad or embeddings) follows the checkpoint's variables unless --kind
says otherwise; see bert_tf/export.py for the signatures and their outputs.
"""

from bert_tf import options
from bert_tf.jobs import export

if __name__ == "__main__":
    options.main("export_model.py", export.ExportOptions, export.run)

"""Extracts per-token activations of chosen layers as JSON lines, as the original
extract_features.py.

    echo 'Who was Jim Henson ? ||| Jim Henson was a puppeteer' > /tmp/input.txt
    python extract_features.py --input_file=/tmp/input.txt --output_file=/tmp/output.jsonl \
        --vocab_file=$BERT_BASE_DIR/vocab.txt --bert_config_file=$BERT_BASE_DIR/bert_config.json \
        --init_checkpoint=$BERT_BASE_DIR/bert_model.ckpt --layers=-1,-2,-3,-4 \
        --max_seq_length=128 --batch_size=8
"""

from bert_tf.jobs import script
from bert_tf.jobs.extract_features import ExtractOptions, output_lock, run

if __name__ == "__main__":
    script.main("extract_features.py", ExtractOptions, run, output_lock)

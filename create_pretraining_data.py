"""Creates masked-LM / next-sentence pretraining TFRecords, as the original script does.

    python create_pretraining_data.py --input_file=corpus/*.txt --output_file=out/data.tfrecord \
        --vocab_file=uncased_L-12_H-768_A-12/vocab.txt --do_lower_case=True \
        --max_seq_length=128 --max_predictions_per_seq=20 --masked_lm_prob=0.15 \
        --random_seed=12345 --dupe_factor=5

Flags, defaults and output bytes are the original's (see bert_tf/data/pretraining_data.py).
`--mode=fast` cuts the corpus into shards made in parallel by `--num_workers` processes and
writes one file per shard (see bert_tf/data/pretraining_shards.py):

    python create_pretraining_data.py --mode=fast --input_file=corpus/*.txt \
        --output_file=out/ --vocab_file=vocab.txt ...   # out/part-00000-of-00016.tfrecord...
"""

from bert_tf.jobs import script
from bert_tf.jobs.create_pretraining_data import DataOptions, run

if __name__ == "__main__":
    script.main("create_pretraining_data.py", DataOptions, run)

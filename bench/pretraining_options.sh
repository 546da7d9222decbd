#!/usr/bin/env bash
# Measures the pretraining options of issue 7 side by side on this machine: a tiny BERT
# (2 layers, hidden 64; tiny_ckpt's config) trained from random init for STEPS steps on the
# first 18,000 lines of big.txt, each variant evaluated on the same held-out records (the
# next 2,000 lines, static masks, NSP pairs) by run_pretraining.py --do_eval.
#   bash bench/pretraining_options.sh [STEPS]        (default 300; ~1 minute per variant)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-300}
PY=.venv/bin/python
F=../shared/fixtures
OUT=out/options
VOCAB=$F/tiny_ckpt/vocab.txt
mkdir -p $OUT
head -18000 ../shared/data/text/big.txt > $OUT/train.txt
sed -n 18001,20000p ../shared/data/text/big.txt > $OUT/eval.txt
make() {  # name, extra create_pretraining_data flags
  $PY create_pretraining_data.py --input_file=$OUT/$2 --output_file=$OUT/$1.tfrecord \
    --vocab_file=$VOCAB --max_seq_length=128 --max_predictions_per_seq=20 --dupe_factor=2 \
    "${@:3}" > /dev/null
}
make eval eval.txt
make static train.txt
make dynamic train.txt --masking=dynamic
make full train.txt --masking=dynamic --packing=full_sentences
make sop train.txt --sentence_order_prediction
make ngram train.txt --ngram_masking=3
sed 's/}/, "embedding_size": 32, "num_hidden_groups": 1, "num_hidden_layers": 4}/' \
  $F/tiny_ckpt/bert_config.json > $OUT/albert_config.json
train() {  # name, records, config, extra run_pretraining flags
  rm -rf $OUT/run_$1
  $PY run_pretraining.py --bert_config_file=$3 --input_file=$OUT/$2.tfrecord \
    --output_dir=$OUT/run_$1 --do_train --train_batch_size=32 --num_train_steps=$STEPS \
    --num_warmup_steps=$((STEPS / 10)) --learning_rate=2e-3 --save_checkpoints_steps=$STEPS \
    --iterations_per_loop=50 --seed=1 "${@:4}" 2> $OUT/run_$1.log
  $PY run_pretraining.py --bert_config_file=$3 --input_file=$OUT/eval.tfrecord \
    --output_dir=$OUT/run_$1 --do_eval --eval_batch_size=32 --max_eval_steps=40 \
    2>> $OUT/run_$1.log
  printf "%-44s %s\n" "$1" "$(tr '\n' ' ' < $OUT/run_$1/eval_results.txt)"
}
BERT=$F/tiny_ckpt/bert_config.json
train static_bert static $BERT
train dynamic_masking dynamic $BERT --dynamic_masking --vocab_file=$VOCAB
train dynamic_full_sentences_no_nsp full $BERT --dynamic_masking --vocab_file=$VOCAB --nsp=false
train ngram3_static ngram $BERT
train albert_E32_shared_L4_sop sop $OUT/albert_config.json

"""Answers live requests with an exported model, speaking TF Serving's REST and gRPC APIs.

    python export_model.py --bert_config_file=... --vocab_file=... \
        --init_checkpoint=/tmp/mrpc_output --export_dir=/tmp/mrpc_export
    python serve.py --export_dir=/tmp/mrpc_export
    curl localhost:8501/v1/models/bert:predict -d '{"signature_name": "pair",
        "instances": [{"text_a": "A cat.", "text_b": "A feline."}]}'

Flags: the fields of bert_tf.jobs.serve.ServeOptions. Needs the `[serve]` extra (aiohttp,
tensorflow-serving-api), which scripts/setup.sh installs.
"""

from bert_tf.jobs import script
from bert_tf.jobs.serve import ServeOptions, run

if __name__ == "__main__":
    script.main("serve.py", ServeOptions, run)

import json

import numpy as np
from conftest import fixture_path

from bert_tf.data.features import encode_text, truncate_seq_pair
from bert_tf.data.tokenization import FullTokenizer


def test_truncate_longest_first():
    a, b = list("abcdef"), list("xyz")
    truncate_seq_pair(a, b, 6)
    assert a == list("abc") and b == list("xyz")
    a, b = list("ab"), list("xy")
    truncate_seq_pair(a, b, 3)
    assert a == list("ab") and b == list("x")


def test_matches_the_inputs_the_original_built():
    """reference_public.npz inputs: original convert_single_example, then [MASK] placed."""
    examples = json.loads(fixture_path("reference_public_inputs.json").read_text())
    ref = np.load(fixture_path("reference_public.npz"))
    tokenizer = FullTokenizer(str(fixture_path("minilm_ckpt", "vocab.txt")), True)
    mask_id = tokenizer.vocab["[MASK]"]
    for i, example in enumerate(examples):
        encoded = encode_text(tokenizer, example["text_a"], example["text_b"], 64)
        ids = np.array(encoded.input_ids)
        ids[example["masked_lm_positions"]] = mask_id
        np.testing.assert_array_equal(ids, ref["input_ids"][i])
        np.testing.assert_array_equal(encoded.input_mask, ref["input_mask"][i])
        np.testing.assert_array_equal(encoded.segment_ids, ref["segment_ids"][i])

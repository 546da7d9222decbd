"""build_vocab.py's job: a WordPiece vocabulary (vocab.txt in the original layout) from text.

Reserved entries first, as in Google's vocabs: [PAD], [unused0]...[unused{N-1}], [UNK],
[CLS], [SEP], [MASK]; then the learned word pieces (vocab_builder.py).
"""

from __future__ import annotations

import dataclasses

from bert_tf import file_io
from bert_tf.options import JobOptions, option
from bert_tf.text import vocab_builder


@dataclasses.dataclass(kw_only=True)
class VocabOptions(JobOptions):
    """The flags of build_vocab.py."""

    input_file: str = option(help="Text files (comma-separated globs).", required=True)
    output_file: str = option(help="Where to write vocab.txt.", required=True)
    vocab_size: int = option(30522, "At most this many entries, reserved ones included.")
    do_lower_case: bool = option(True, "Lower-case and strip accents first.")
    num_unused: int = option(99, "[unusedN] slots between [PAD] and [UNK].")


def output_lock(options: VocabOptions):
    """Holds `output_file` (file_io.holding_output)."""
    return file_io.holding_output(options.output_file, "output_file")


def run(options: VocabOptions) -> list[str]:
    """Learns the vocabulary, writes it atomically; returns its tokens."""
    files = file_io.expand_patterns(options.input_file, sort=False)
    tokens = vocab_builder.build_vocab(files, options.vocab_size, options.do_lower_case,
                                       options.num_unused)
    vocab_builder.write_vocab(tokens, options.output_file)
    print(f"Wrote {len(tokens)} tokens to {options.output_file}")
    return tokens

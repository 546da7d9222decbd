"""Options are the scripts' only flag declarations: each field is a flag with the field's
default, every flag a job reads, and the package's functions stay short (issue 12)."""

import ast
import dataclasses
from pathlib import Path

import pytest
from absl import flags

from bert_tf import options as options_lib
from bert_tf.jobs.build_vocab import VocabOptions
from bert_tf.jobs.create_pretraining_data import DataOptions
from bert_tf.jobs.export_model import ExportOptions
from bert_tf.jobs.extract_features import ExtractOptions
from bert_tf.jobs.run_classifier import ClassifierOptions
from bert_tf.jobs.run_ner import NerOptions
from bert_tf.jobs.run_pretraining import PretrainingOptions
from bert_tf.jobs.run_squad import SquadOptions
from bert_tf.jobs.serve import ServeOptions

PACKAGE = Path(__file__).resolve().parents[1] / "bert_tf"
JOB_OPTIONS = [PretrainingOptions, ClassifierOptions, SquadOptions, ExtractOptions,
               DataOptions, ExportOptions, VocabOptions, NerOptions, ServeOptions]


@pytest.mark.parametrize("options_class", JOB_OPTIONS)
def test_flags_come_from_the_fields_with_their_defaults(options_class):
    values = flags.FlagValues()
    options_lib.define_flags(options_class, values)
    fields = {field.name: field for field in dataclasses.fields(options_class)}
    assert set(values) == set(fields)
    required = {name for name, field in fields.items() if field.metadata["required"]}
    argv = ["script"] + [f"--{name}=x" for name in sorted(required)] + ["--seed=3"] * (
        "seed" in fields)
    values(argv)
    options = options_lib.from_flags(options_class, values)
    for name, field in fields.items():
        if name in required:
            assert getattr(options, name) == "x"
        elif name != "seed":
            assert getattr(options, name) == field.default, name
    assert options_class.__doc__


def test_a_required_flag_is_required():
    values = flags.FlagValues()
    options_lib.define_flags(ExtractOptions, values)
    with pytest.raises(flags.IllegalFlagValueError, match="input_file"):
        values(["extract_features.py", "--output_file=o", "--bert_config_file=c",
                "--init_checkpoint=i", "--vocab_file=v"])


def test_every_flag_is_read_by_the_package():
    """A field that no code reads would be a flag silently ignored; the two the original
    accepted without effect say so in their help."""
    source = "\n".join(path.read_text() for path in PACKAGE.rglob("*.py"))
    for options_class in JOB_OPTIONS:
        for field in dataclasses.fields(options_class):
            read = (f".{field.name}" in source or f'"{field.name}"' in source)
            assert read or "no effect" in field.metadata["help"], (options_class, field.name)


def test_functions_are_short_with_few_positional_parameters():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = [a.arg for a in node.args.posonlyargs + node.args.args
                              if a.arg not in ("self", "cls")]
                length = node.end_lineno - node.lineno + 1
                if length > 60 or len(positional) > 6:
                    too_long.append(f"{path.name}:{node.lineno} {node.name} "
                                    f"({length} lines, {len(positional)} positional)")
    assert not too_long, too_long

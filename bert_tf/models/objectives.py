"""What the training driver optimizes and reports, per kind of model: losses, eval metric
sums and the per-example values prediction keeps. Each objective is written against the
model's outputs (`heads.py`) and a batch of records (`input_pipeline.py`), and follows
`training.Objective` (and `training.Metrics` where the driver evaluates).

- `PretrainingObjective`: masked LM `sum(w * -log p(label)) / (sum(w) + 1e-5)` over the
  masked positions of the batch (w = `masked_lm_weights`, 0 on padding slots) plus next
  sentence `mean(-log p(label))`; eval metrics as the original `metric_fn`.
- `ClassificationObjective`: mean cross-entropy (squared error for regression).
- `SpanObjective`: the mean of the start and end cross-entropies (run_squad.py).

Shapes: B batch, S sequence length, P masked positions, C classes.
"""

from __future__ import annotations

from keras import ops


def label_log_probs(log_probs, labels):
    """[..., C] log-probabilities and [...] int labels -> [...] log p(label).

    As the original writes it, `sum(log_probs * one_hot(labels))`: the gradient is a dense
    multiply. A gather (`take_along_axis`) is the same value, but its gradient scatters into
    a zeroed [..., C] buffer, which for the masked LM's C = 30,522 took 0.44 s of a 1 s
    tiny pretraining step on 2 cores (issue 17's profile)."""
    one_hot = ops.one_hot(ops.cast(labels, "int32"), ops.shape(log_probs)[-1],
                          dtype=log_probs.dtype)
    return ops.sum(log_probs * one_hot, axis=-1)


def _hits(log_probs, labels):
    """1.0 where the arg-max class is the label, else 0.0; shape of `labels`."""
    predictions = ops.cast(ops.argmax(log_probs, axis=-1), "int32")
    return ops.cast(predictions == ops.cast(labels, "int32"), "float32")


def _examples(batch: dict) -> dict:
    """The normalizer of a per-example mean: the batch's row count."""
    return {"examples": ops.cast(ops.shape(batch["input_ids"])[0], "float32")}


class PretrainingObjective:
    """Masked LM + next sentence prediction on `BertPretrainer` outputs; with `nsp=False`
    (RoBERTa) masked LM alone."""

    def __init__(self, nsp: bool = True):
        self.nsp = nsp

    def normalizers(self, batch: dict) -> dict:
        return {"masked_lm_weight": ops.sum(batch["masked_lm_weights"]), **_examples(batch)}

    def _per_example_losses(self, outputs: dict, batch: dict):
        """-> masked-LM losses [B, P] and next-sentence losses [B]."""
        masked_lm = -label_log_probs(outputs["masked_lm_log_probs"], batch["masked_lm_ids"])
        labels = ops.reshape(batch["next_sentence_labels"], (-1,))
        next_sentence = -label_log_probs(outputs["next_sentence_log_probs"], labels)
        return masked_lm, next_sentence

    def loss(self, outputs: dict, batch: dict, normalizers: dict):
        """This replica's share of the global batch's total loss (scalar float32)."""
        masked_lm, next_sentence = self._per_example_losses(outputs, batch)
        weights = batch["masked_lm_weights"]
        masked_lm_loss = ops.sum(weights * masked_lm) / (normalizers["masked_lm_weight"] + 1e-5)
        if not self.nsp:
            return masked_lm_loss
        return masked_lm_loss + ops.sum(next_sentence) / normalizers["examples"]

    def metrics(self, outputs: dict, batch: dict) -> dict:
        """Sums over this replica's batch."""
        masked_lm, next_sentence = self._per_example_losses(outputs, batch)
        weights = batch["masked_lm_weights"]
        masked_lm_hits = _hits(outputs["masked_lm_log_probs"], batch["masked_lm_ids"])
        labels = ops.reshape(batch["next_sentence_labels"], (-1,))
        next_sentence_hits = _hits(outputs["next_sentence_log_probs"], labels)
        return {
            "masked_lm_correct": ops.sum(weights * masked_lm_hits),
            "masked_lm_loss": ops.sum(weights * masked_lm),
            "masked_lm_weight": ops.sum(weights),
            "next_sentence_correct": ops.sum(next_sentence_hits),
            "next_sentence_loss": ops.sum(next_sentence),
            "examples": ops.cast(ops.shape(labels)[0], "float32"),
        }

    def finalize_metrics(self, batches: list[dict]) -> dict:
        """Per-batch sums -> the original's eval_results values."""
        total = {name: sum(batch[name] for batch in batches) for name in batches[0]}
        batch_losses = [
            b["masked_lm_loss"] / (b["masked_lm_weight"] + 1e-5)
            + (b["next_sentence_loss"] / b["examples"] if self.nsp else 0.0)
            for b in batches
        ]
        results = {
            "loss": sum(batch_losses) / len(batch_losses),
            "masked_lm_accuracy": total["masked_lm_correct"] / total["masked_lm_weight"],
            "masked_lm_loss": total["masked_lm_loss"] / total["masked_lm_weight"],
        }
        if self.nsp:
            results["next_sentence_accuracy"] = (
                total["next_sentence_correct"] / total["examples"])
            results["next_sentence_loss"] = total["next_sentence_loss"] / total["examples"]
        return results


class ClassificationObjective:
    """Mean cross-entropy over the global batch (mean squared error for regression, a
    one-output `BertClassifier`; with `multi_label`, a sigmoid per label and the binary
    cross-entropy averaged over the labels)."""

    def __init__(self, is_regression: bool = False, multi_label: bool = False):
        self.is_regression = is_regression
        self.multi_label = multi_label

    def normalizers(self, batch: dict) -> dict:
        return _examples(batch)

    def per_example_loss(self, logits, batch: dict):
        """[B, L] logits -> [B] losses."""
        if self.multi_label:  # label_ids: [B, L] multi-hot
            targets = ops.cast(batch["label_ids"], "float32")
            return ops.mean(ops.binary_crossentropy(targets, logits, from_logits=True), axis=-1)
        if self.is_regression:
            return ops.square(logits[:, 0] - ops.cast(batch["label_ids"], "float32"))
        return -label_log_probs(ops.log_softmax(logits, axis=-1), batch["label_ids"])

    def loss(self, logits, batch: dict, normalizers: dict):
        return ops.sum(self.per_example_loss(logits, batch)) / normalizers["examples"]

    def predict(self, logits, batch: dict) -> dict:
        """What evaluation and prediction keep per example: the loss, and "predictions"
        [B] (regression) or "probabilities" [B, L]."""
        result = {
            "per_example_loss": self.per_example_loss(logits, batch),
            "is_real_example": batch["is_real_example"],
            "label_ids": batch["label_ids"],
        }
        if self.is_regression:
            result["predictions"] = logits[:, 0]
        elif self.multi_label:
            result["probabilities"] = ops.sigmoid(logits)
            result["logits"] = logits  # what long-text windows average
        else:
            result["logits"] = logits
            result["probabilities"] = ops.softmax(logits, axis=-1)
        return result


class SpanObjective:
    """The original loss: mean over the batch of the start and end cross-entropies, halved."""

    def normalizers(self, batch: dict) -> dict:
        return _examples(batch)

    def loss(self, outputs: dict, batch: dict, normalizers: dict):
        total = 0.0
        for name, positions in (("start_logits", "start_positions"),
                                ("end_logits", "end_positions")):
            log_probs = ops.log_softmax(outputs[name], axis=-1)
            total = total - ops.sum(label_log_probs(log_probs, batch[positions]))
        return total / 2.0 / normalizers["examples"]

    def predict(self, outputs: dict, batch: dict) -> dict:
        """What prediction keeps: the window's id and its [B, S] start and end logits."""
        return {"unique_ids": batch["unique_ids"], **outputs}


class TokenClassificationObjective:
    """Mean cross-entropy over the labelled positions of the global batch (each word's
    first piece: `label_weights` 1), as the BERT paper's NER. Length-sorted training
    batches bring `chunk_label_share` (`bucketing.training_batches`): then the mean is over
    the labelled positions a batch of its chunk holds on average."""

    def normalizers(self, batch: dict) -> dict:
        if "chunk_label_share" in batch:
            return {"labels": ops.sum(batch["chunk_label_share"])}
        return {"labels": ops.sum(ops.cast(batch["label_weights"], "float32"))}

    def per_token_loss(self, logits, batch: dict):
        """[B, S, L] logits -> [B, S] losses, 0 where the weight is 0."""
        weights = ops.cast(batch["label_weights"], "float32")
        log_probs = ops.log_softmax(logits, axis=-1)
        return -label_log_probs(log_probs, batch["label_ids"]) * weights

    def loss(self, logits, batch: dict, normalizers: dict):
        return ops.sum(self.per_token_loss(logits, batch)) / ops.maximum(
            normalizers["labels"], 1.0)

    def predict(self, logits, batch: dict) -> dict:
        """What evaluation and prediction keep: [B, S] predicted ids, losses, weights."""
        return {"predictions": ops.argmax(logits, axis=-1),
                "per_token_loss": self.per_token_loss(logits, batch),
                "label_weights": batch["label_weights"]}

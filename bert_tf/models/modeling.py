"""The BERT encoder as Keras 3 layers, with the original's variable names and numerics.

Every variable's Keras path is its name in Google's checkpoints, e.g.
`bert/encoder/layer_3/attention/self/query/kernel`. To get there, each layer builds its
sublayers inside its own `build()` (Keras opens the layer's name scope around `build`), and
the levels of the original that hold no computation of their own (`attention`,
`intermediate`) are plain `keras.name_scope`s. `BertModel` builds itself in its constructor,
so its paths start at `bert/` when it is made as a top-level model (inside another layer's
`build`, Keras would prefix that layer's name).

Shapes in docstrings: B batch, S sequence length, H hidden size, N attention heads,
D head size (H / N), I intermediate size, V vocabulary size.

Numerics follow the original `modeling.py`: tanh-approximate GELU, LayerNorm epsilon 1e-12,
-10000 added to masked attention scores, truncated-normal initialisers. Under a mixed
precision policy the variables stay float32, matmuls run in the compute dtype, and the
softmax and LayerNorm run in float32.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import ops

from bert_tf.config import BertConfig
from bert_tf.errors import UsageError

SERIALIZABLE_PACKAGE = "bert_tf"  # the models' names in .keras files: "bert_tf>BertModel"
LAYER_NORM_EPSILON = 1e-12
MASKED_ATTENTION_SCORE = -10000.0


def gelu(x):
    """GELU, tanh approximation, exactly as the original computes it."""
    cdf = 0.5 * (1.0 + ops.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * ops.power(x, 3))))
    return x * cdf


def get_activation(name: str) -> Callable | None:
    """Maps a `hidden_act` string to a function, as the original does (None means linear)."""
    if not name or name.lower() == "linear":
        return None
    functions = {"gelu": gelu, "relu": keras.activations.relu, "tanh": ops.tanh}
    if name.lower() not in functions:
        raise UsageError(f"Unsupported activation: {name!r}")
    return functions[name.lower()]


def truncated_normal(config: BertConfig) -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


class LayerNorm(keras.layers.Layer):
    """The original's LayerNorm over the last axis: variables `gamma`, `beta` [H].

    Computed in float32 with the original's formula (`tf.nn.batch_normalization` after
    `tf.nn.moments`): x * inv + (beta - mean * inv), inv = gamma / sqrt(var + 1e-12). The
    common (x - mean) * inv + beta rounds differently and, on real weights with large
    outlier features, drifts ~5e-5 from the original over six layers.
    """

    def __init__(self, size: int, name: str = "LayerNorm", **kwargs):
        super().__init__(name=name, **kwargs)
        self.size = size

    def build(self, input_shape=None):
        self.gamma = self.add_weight(name="gamma", shape=(self.size,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(self.size,), initializer="zeros")

    def call(self, x):
        """[..., H] -> [..., H] in the compute dtype."""
        x32 = ops.cast(x, "float32")
        mean = ops.mean(x32, axis=-1, keepdims=True)
        variance = ops.mean(ops.square(x32 - ops.stop_gradient(mean)), axis=-1, keepdims=True)
        inv = ops.rsqrt(variance + LAYER_NORM_EPSILON) * ops.cast(self.gamma, "float32")
        y = x32 * inv + (ops.cast(self.beta, "float32") - mean * inv)
        return ops.cast(y, self.compute_dtype)


def attention_bias(input_mask):
    """[B, S] mask of 1 (attend) / 0 (padding) -> [B, 1, 1, S] float32 bias (0 or -10000)."""
    mask = ops.cast(input_mask, "float32")
    return ops.expand_dims(ops.expand_dims((1.0 - mask) * MASKED_ATTENTION_SCORE, 1), 1)


def embedding_width(config: BertConfig) -> int:
    """E: the ALBERT config field `embedding_size` when set (factorized embeddings), else H."""
    return getattr(config, "embedding_size", None) or config.hidden_size


def shares_layers(config: BertConfig) -> bool:
    """ALBERT's cross-layer sharing: configs with `num_hidden_groups` (google-research/albert
    layout `encoder/transformer/group_<g>/inner_group_<k>/...`)."""
    return getattr(config, "num_hidden_groups", None) is not None


class Embeddings(keras.layers.Layer):
    """Word + token-type + position embeddings, then LayerNorm and dropout.

    Variables: `word_embeddings` [V, E], `token_type_embeddings` [type_vocab_size, E],
    `position_embeddings` [max_position_embeddings, E], `LayerNorm/{gamma,beta}` [E]; E is
    the hidden size H unless the config factorizes embeddings (ALBERT's `embedding_size`).
    """

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(name="embeddings", **kwargs)
        self.config = config

    def build(self, input_shape=None):
        config = self.config
        init = truncated_normal(config)
        width = embedding_width(config)
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(config.vocab_size, width),
            initializer=init,
        )
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(config.type_vocab_size, width),
            initializer=init,
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(config.max_position_embeddings, width),
            initializer=init,
        )
        self.layer_norm = LayerNorm(width, dtype=self.dtype_policy)
        self.layer_norm.build()
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, dtype=self.dtype_policy)

    def call(self, input_ids, segment_ids, training=False):
        """[B, S] int ids, [B, S] int segment ids -> [B, S, E]."""
        seq_length = ops.shape(input_ids)[1]
        if isinstance(seq_length, int) and seq_length > self.config.max_position_embeddings:
            raise UsageError(
                f"sequence length {seq_length} is longer than max_position_embeddings "
                f"({self.config.max_position_embeddings}) of the config"
            )
        # int32 ids whatever arrives (int64 records; Keras' symbolic build in fit under a
        # strategy traces with float32 placeholders).
        x = ops.take(self.word_embeddings, ops.cast(input_ids, "int32"), axis=0)
        x = x + ops.take(self.token_type_embeddings, ops.cast(segment_ids, "int32"), axis=0)
        x = x + ops.expand_dims(self.position_embeddings[:seq_length], 0)
        return self.dropout(self.layer_norm(x), training=training)


class SelfAttention(keras.layers.Layer):
    """Multi-head scaled dot-product self-attention (`attention/self`).

    Variables: `query`, `key`, `value` dense layers [H, H] + bias [H].
    """

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(name="self", **kwargs)
        self.config = config

    def build(self, input_shape=None):
        config = self.config
        for name in ("query", "key", "value"):
            dense = keras.layers.Dense(
                config.hidden_size, kernel_initializer=truncated_normal(config), name=name,
                dtype=self.dtype_policy,
            )
            dense.build((None, None, config.hidden_size))
            setattr(self, name, dense)
        self.dropout = keras.layers.Dropout(
            config.attention_probs_dropout_prob, dtype=self.dtype_policy
        )

    def call(self, x, input_mask, training=False, queries=None):
        """x [B, S, H], input_mask [B, S] (1 attend, 0 padding) -> context [B, Q, H] for
        the Q rows `queries` [B, Q, H] that attend to x (default: x itself, Q = S)."""
        num_heads = self.config.num_attention_heads
        head_size = self.config.attention_head_size
        batch = ops.shape(x)[0]
        queries = x if queries is None else queries

        def split_heads(t):  # [B, S, H] -> [B, S, N, D]
            return ops.reshape(t, (batch, -1, num_heads, head_size))

        query = split_heads(self.query(queries))
        key = split_heads(self.key(x))
        value = split_heads(self.value(x))
        scores = ops.einsum("bqnd,bknd->bnqk", query, key) * (1.0 / math.sqrt(head_size))
        scores = ops.cast(scores, "float32") + attention_bias(input_mask)
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probs = self.dropout(probs, training=training)
        context = ops.einsum("bnqk,bknd->bqnd", probs, value)
        return ops.reshape(context, (batch, -1, num_heads * head_size))


class ResidualOutput(keras.layers.Layer):
    """`output`: dense to H, dropout, add the residual, LayerNorm.

    Used twice per transformer layer (`attention/output` and `output`).
    Variables: `dense/{kernel,bias}`, `LayerNorm/{gamma,beta}`.
    """

    def __init__(self, config: BertConfig, input_size: int, **kwargs):
        super().__init__(name="output", **kwargs)
        self.config = config
        self.input_size = input_size

    def build(self, input_shape=None):
        config = self.config
        self.dense = keras.layers.Dense(
            config.hidden_size, kernel_initializer=truncated_normal(config), name="dense",
            dtype=self.dtype_policy,
        )
        self.dense.build((None, None, self.input_size))
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, dtype=self.dtype_policy)
        self.layer_norm = LayerNorm(config.hidden_size, dtype=self.dtype_policy)
        self.layer_norm.build()

    def call(self, x, residual, training=False):
        """x [B, S, input_size], residual [B, S, H] -> [B, S, H]."""
        return self.layer_norm(self.dropout(self.dense(x), training=training) + residual)


class TransformerLayer(keras.layers.Layer):
    """One encoder layer `layer_<i>`: self-attention block, then feed-forward block."""

    def __init__(self, config: BertConfig, index: int, **kwargs):
        super().__init__(name=f"layer_{index}", **kwargs)
        self.config = config

    def build(self, input_shape=None):
        config = self.config
        policy = self.dtype_policy
        with keras.name_scope("attention"):
            self.attention = SelfAttention(config, dtype=policy)
            self.attention.build()
            self.attention_output = ResidualOutput(config, config.hidden_size, dtype=policy)
            self.attention_output.build()
        with keras.name_scope("intermediate"):
            self.intermediate = keras.layers.Dense(
                config.intermediate_size, activation=get_activation(config.hidden_act),
                kernel_initializer=truncated_normal(config), name="dense", dtype=policy,
            )
            self.intermediate.build((None, None, config.hidden_size))
        self.ffn_output = ResidualOutput(config, config.intermediate_size, dtype=policy)
        self.ffn_output.build()

    def call(self, x, input_mask, training=False, first_token_only=False):
        """x [B, S, H], input_mask [B, S] -> [B, S, H], or with first_token_only the first
        row alone [B, 1, H] (it attends to every row; the other rows are not computed)."""
        rows = x[:, :1] if first_token_only else x
        attended = self.attention(x, input_mask, training=training, queries=rows)
        x = self.attention_output(attended, rows, training=training)
        return self.ffn_output(self.intermediate(x), x, training=training)


class AlbertLayer(keras.layers.Layer):
    """An ALBERT transformer layer `inner_group_<k>` (google-research/albert names):
    `attention_1/self/{query,key,value}`, `attention_1/output/dense`, `LayerNorm`,
    `ffn_1/intermediate/dense`, `ffn_1/intermediate/output/dense`, `LayerNorm_1`."""

    def __init__(self, config: BertConfig, index: int, **kwargs):
        super().__init__(name=f"inner_group_{index}", **kwargs)
        self.config = config

    def _dense(self, units: int, inputs: int, activation=None) -> keras.layers.Dense:
        dense = keras.layers.Dense(
            units, activation=activation, kernel_initializer=truncated_normal(self.config),
            name="dense", dtype=self.dtype_policy,
        )
        dense.build((None, None, inputs))
        return dense

    def build(self, input_shape=None):
        config, policy = self.config, self.dtype_policy
        hidden, intermediate = config.hidden_size, config.intermediate_size
        with keras.name_scope("attention_1"):
            self.attention = SelfAttention(config, dtype=policy)
            self.attention.build()
            with keras.name_scope("output"):
                self.attention_dense = self._dense(hidden, hidden)
        self.attention_norm = LayerNorm(hidden, dtype=policy)
        self.attention_norm.build()
        with keras.name_scope("ffn_1"), keras.name_scope("intermediate"):
            self.intermediate = self._dense(intermediate, hidden,
                                            get_activation(config.hidden_act))
            with keras.name_scope("output"):
                self.ffn_dense = self._dense(hidden, intermediate)
        self.ffn_norm = LayerNorm(hidden, name="LayerNorm_1", dtype=policy)
        self.ffn_norm.build()
        self.dropout = keras.layers.Dropout(config.hidden_dropout_prob, dtype=policy)

    def call(self, x, input_mask, training=False, first_token_only=False):
        """x [B, S, H], input_mask [B, S] -> [B, S, H] ([B, 1, H] with first_token_only,
        as TransformerLayer)."""
        rows = x[:, :1] if first_token_only else x
        attended = self.attention_dense(
            self.attention(x, input_mask, training=training, queries=rows))
        x = self.attention_norm(self.dropout(attended, training=training) + rows)
        ffn = self.ffn_dense(self.intermediate(x))
        return self.ffn_norm(self.dropout(ffn, training=training) + x)


class Encoder(keras.layers.Layer):
    """`encoder`: the original's stack of `num_hidden_layers` transformer layers `layer_<i>`.

    With factorized embeddings (E != H) it first projects them with
    `embedding_hidden_mapping_in` [E, H].
    """

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(name="encoder", **kwargs)
        self.config = config
        self.recompute = False  # gradient checkpointing (see `recomputed`)

    def build(self, input_shape=None):
        self.embedding_projection = self._embedding_projection()
        self.transformer_layers = []
        for index in range(self.config.num_hidden_layers):
            layer = TransformerLayer(self.config, index, dtype=self.dtype_policy)
            layer.build()
            self.transformer_layers.append(layer)

    def _embedding_projection(self) -> keras.layers.Dense | None:
        config, width = self.config, embedding_width(self.config)
        if width == config.hidden_size:
            return None
        projection = keras.layers.Dense(
            config.hidden_size, kernel_initializer=truncated_normal(config),
            name="embedding_hidden_mapping_in", dtype=self.dtype_policy,
        )
        projection.build((None, None, width))
        return projection

    def layers_by_depth(self) -> list[list[keras.layers.Layer]]:
        """The layers that make up each of the num_hidden_layers steps, in order."""
        return [[layer] for layer in self.transformer_layers]

    def call(self, x, input_mask, training=False, first_token_only=False):
        """x [B, S, E], input_mask [B, S] -> list of num_hidden_layers [B, S, H], one per
        layer. With first_token_only the very last layer computes the first row alone, so
        the last output is [B, 1, H] (what the pooler reads, for less compute)."""
        if self.embedding_projection is not None:
            x = self.embedding_projection(x)
        outputs = []
        steps = self.layers_by_depth()
        for depth, step in enumerate(steps):
            for index, layer in enumerate(step):
                # (ALBERT's steps share layers: the last one is known by its position.)
                first_only = (first_token_only and depth == len(steps) - 1
                              and index == len(step) - 1)
                if training and self.recompute:
                    x = recomputed(layer, x, input_mask, first_only)
                else:
                    x = layer(x, input_mask, training=training, first_token_only=first_only)
            outputs.append(x)
        return outputs


def recomputed(layer: keras.layers.Layer, x, input_mask, first_token_only: bool = False):
    """`layer(x, input_mask, training=True, first_token_only=...)` whose activations the
    backward pass computes again (`keras.remat`) instead of keeping them: memory for one
    layer's activations instead of all, for one more forward pass. The layer's
    non-trainable variables are its dropout seed generators' states; each (re)computation
    starts from the states the forward pass started from, so the recomputation draws the
    same masks and the gradients are the plain run's. A recomputation leaves the states as
    it found them (a layer called more than once, as ALBERT's, ends where the plain run
    does)."""
    states = layer.non_trainable_variables
    start = [ops.copy(state.value) for state in states]

    def compute(x):
        found = [ops.copy(state.value) for state in states]
        for state, value in zip(states, start, strict=True):
            state.assign(value)
        output = layer(x, input_mask, training=True, first_token_only=first_token_only)
        for state, before, value in zip(states, start, found, strict=True):
            recomputing = ops.any(ops.not_equal(value, before))
            state.assign(ops.where(recomputing, value, state.value))
        return output

    return keras.remat(compute)(x)


class AlbertEncoder(Encoder):
    """ALBERT's encoder with cross-layer sharing (configs with `num_hidden_groups`):
    `num_hidden_groups` groups of `inner_group_num` layers under
    `transformer/group_<g>/inner_group_<k>`; step i of the num_hidden_layers runs group
    `i * num_hidden_groups // num_hidden_layers`."""

    def build(self, input_shape=None):
        config = self.config
        self.embedding_projection = self._embedding_projection()
        self.groups = []
        with keras.name_scope("transformer"):
            for group in range(config.num_hidden_groups):
                with keras.name_scope(f"group_{group}"):
                    inner = [AlbertLayer(config, k, dtype=self.dtype_policy)
                             for k in range(getattr(config, "inner_group_num", 1))]
                    for layer in inner:
                        layer.build()
                self.groups.append(inner)

    def layers_by_depth(self) -> list[list[keras.layers.Layer]]:
        steps = self.config.num_hidden_layers
        return [self.groups[i * len(self.groups) // steps] for i in range(steps)]


class Pooler(keras.layers.Layer):
    """`pooler`: tanh(dense(first token)). Variables `dense/{kernel,bias}`."""

    def __init__(self, config: BertConfig, **kwargs):
        super().__init__(name="pooler", **kwargs)
        self.config = config

    def build(self, input_shape=None):
        self.dense = keras.layers.Dense(
            self.config.hidden_size, activation="tanh",
            kernel_initializer=truncated_normal(self.config), name="dense",
            dtype=self.dtype_policy,
        )
        self.dense.build((None, self.config.hidden_size))

    def call(self, sequence_output):
        """[B, S, H] -> [B, H]."""
        return self.dense(sequence_output[:, 0])


class Serializable:
    """get_config / from_config for a model built from (config, *extra constructor args),
    the args named by `CONFIG_ARGS`: what `.keras` files and `keras.models.clone_model`
    need."""

    CONFIG_ARGS: tuple[str, ...] = ()

    def get_config(self) -> dict:
        return {"config": self.config.to_dict(), "name": self.name,
                "dtype": self.dtype_policy.name,
                **{arg: getattr(self, arg) for arg in self.CONFIG_ARGS}}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        return cls(BertConfig.from_dict(config.pop("config")), **config)


@keras.saving.register_keras_serializable(package=SERIALIZABLE_PACKAGE)
class BertModel(Serializable, keras.Model):
    """The BERT encoder, variables under `bert/`.

    Call with a dict of `input_ids` [B, S] and optionally `input_mask` [B, S] (default all
    ones) and `segment_ids` [B, S] (default zeros); int32 or int64. Returns a dict:
      sequence_output [B, S, H]: the last layer's output,
      pooled_output [B, H]: the pooler on the first token,
      encoder_outputs: list of num_hidden_layers tensors [B, S, H],
      embedding_output [B, S, E]: the embeddings after LayerNorm and dropout.
    `pooled_only=True` returns pooled_output alone, computing the last layer for the first
    token only (a classifier's path: the same numbers for less compute).

    Example (as the original `modeling.py` shows it; ids already converted to WordPiece):

    ```python
    input_ids = np.array([[31, 51, 99], [15, 5, 0]])
    input_mask = np.array([[1, 1, 1], [1, 1, 0]])
    segment_ids = np.array([[0, 0, 1], [0, 2, 0]])
    config = BertConfig(vocab_size=32000, hidden_size=512, num_hidden_layers=8,
                        num_attention_heads=8, intermediate_size=1024, type_vocab_size=3)
    model = BertModel(config)
    outputs = model({"input_ids": input_ids, "input_mask": input_mask,
                     "segment_ids": segment_ids})
    pooled = outputs["pooled_output"]            # [2, 512]
    checkpoint.load_checkpoint(model, "uncased_L-8_H-512_A-8/bert_model.ckpt")  # real weights
    ```
    """

    def __init__(self, config: BertConfig, is_training: bool | None = None, input_ids=None,
                 input_mask=None, token_type_ids=None, *, use_one_hot_embeddings: bool = False,
                 scope: str | None = None, **kwargs):
        """`BertModel(config)` makes the Keras model.

        Args:
          config: the model's `BertConfig` (`BertConfig.from_json_file(bert_config.json)`).
          is_training, input_ids, input_mask, token_type_ids, scope: the original's
            one-call form, `BertModel(config, is_training, input_ids, ...)`, which also runs
            the model once on those inputs (eagerly), for its `get_*_output()` methods.
          use_one_hot_embeddings: accepted for the original's callers; changes nothing (a
            gather either way).
          **kwargs: Keras model arguments (`name`, `dtype`, e.g. "mixed_bfloat16").
        """
        kwargs.setdefault("name", scope or "bert")
        super().__init__(**kwargs)
        self.config = config
        self.build()
        self._original_outputs = None
        if input_ids is not None:
            self._original_outputs = self(
                {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": token_type_ids},
                training=bool(is_training))

    def build(self, input_shape=None):
        policy = self.dtype_policy
        self.embeddings = Embeddings(self.config, dtype=policy)
        self.embeddings.build()
        encoder_class = AlbertEncoder if shares_layers(self.config) else Encoder
        self.encoder = encoder_class(self.config, dtype=policy)
        self.encoder.build()
        self.pooler = Pooler(self.config, dtype=policy)
        self.pooler.build()

    def call(self, inputs: dict, training=False, pooled_only=False) -> dict:
        input_ids = inputs["input_ids"]
        input_mask = inputs.get("input_mask")
        segment_ids = inputs.get("segment_ids")
        if input_mask is None:
            input_mask = ops.ones_like(input_ids)
        if segment_ids is None:
            segment_ids = ops.zeros_like(input_ids)
        embedding_output = self.embeddings(input_ids, segment_ids, training=training)
        encoder_outputs = self.encoder(embedding_output, input_mask, training=training,
                                       first_token_only=pooled_only)
        sequence_output = encoder_outputs[-1]
        if pooled_only:
            return {"pooled_output": self.pooler(sequence_output)}
        return {
            "sequence_output": sequence_output,
            "pooled_output": self.pooler(sequence_output),
            "encoder_outputs": encoder_outputs,
            "embedding_output": embedding_output,
        }

    @property
    def gradient_checkpointing(self) -> bool:
        """Whether training recomputes each transformer layer's activations in the backward
        pass (`recomputed`): the same gradients, less memory, ~1/3 more compute."""
        return self.encoder.recompute

    @gradient_checkpointing.setter
    def gradient_checkpointing(self, value: bool) -> None:
        self.encoder.recompute = bool(value)

    @property
    def word_embeddings(self) -> keras.Variable:
        """The [V, E] word embedding table (the masked-LM head is tied to it)."""
        return self.embeddings.word_embeddings

    # The original's accessors, for a model made in its one-call form (see __init__).
    def _original_output(self, key: str):
        if self._original_outputs is None:
            raise UsageError("get_*_output() needs the original's one-call form, "
                             "BertModel(config, is_training, input_ids, ...); "
                             "otherwise call the model and read its output dict")
        return self._original_outputs[key]

    def get_pooled_output(self):
        return self._original_output("pooled_output")

    def get_sequence_output(self):
        return self._original_output("sequence_output")

    def get_all_encoder_layers(self):
        return self._original_output("encoder_outputs")

    def get_embedding_output(self):
        return self._original_output("embedding_output")

    def get_embedding_table(self) -> keras.Variable:
        return self.word_embeddings



# The original modeling.py's helper functions, for code written against it. Its functions
# that create variables have layers here instead: embedding_lookup and
# embedding_postprocessor -> Embeddings, attention_layer -> SelfAttention,
# transformer_model -> Encoder, layer_norm -> LayerNorm.


def create_initializer(initializer_range: float = 0.02) -> keras.initializers.Initializer:
    """The truncated-normal initializer of every BERT weight."""
    return keras.initializers.TruncatedNormal(stddev=initializer_range)


def dropout(input_tensor, dropout_prob: float | None):
    """Drops each value with probability `dropout_prob` (None or 0: unchanged)."""
    if not dropout_prob:
        return input_tensor
    return keras.random.dropout(input_tensor, dropout_prob)


def create_attention_mask_from_input_mask(from_tensor, to_mask):
    """[B, F, ...] and a [B, T] 0/1 mask -> [B, F, T] float32: 1 where attending is allowed."""
    from_length = ops.shape(from_tensor)[1]
    to_mask = ops.expand_dims(ops.cast(to_mask, "float32"), 1)  # [B, 1, T]
    return ops.ones((ops.shape(from_tensor)[0], from_length, 1), "float32") * to_mask


def get_shape_list(tensor, expected_rank: int | list[int] | None = None, name=None) -> list:
    """The shape as a list: Python ints where static, scalar tensors where not."""
    if expected_rank is not None:
        assert_rank(tensor, expected_rank, name)
    static = list(tensor.shape)
    if all(dim is not None for dim in static):
        return static
    dynamic = ops.shape(tensor)
    return [dim if dim is not None else dynamic[i] for i, dim in enumerate(static)]


def reshape_to_matrix(input_tensor):
    """[..., W] -> [N, W] (a rank-2 tensor is returned as it is)."""
    if len(input_tensor.shape) == 2:
        return input_tensor
    return ops.reshape(input_tensor, (-1, input_tensor.shape[-1]))


def reshape_from_matrix(output_tensor, orig_shape_list: list):
    """[N, W] back to `orig_shape_list[:-1] + [W]`."""
    if len(orig_shape_list) == 2:
        return output_tensor
    return ops.reshape(output_tensor, (*orig_shape_list[:-1], output_tensor.shape[-1]))


def assert_rank(tensor, expected_rank: int | list[int], name=None) -> None:
    """Raises UsageError when the tensor's rank is not `expected_rank` (an int or a list)."""
    expected = [expected_rank] if isinstance(expected_rank, int) else list(expected_rank)
    if len(tensor.shape) not in expected:
        raise UsageError(f"tensor {name or ''} has rank {len(tensor.shape)}, "
                         f"expected one of {expected} (shape {tuple(tensor.shape)})")


def get_assignment_map_from_checkpoint(tvars, init_checkpoint: str) -> tuple[dict, dict]:
    """The original's (assignment_map, initialized_variable_names) for variables `tvars`
    (Keras or tf.Variables, named by path) and a checkpoint: checkpoint name -> the same
    name for every variable the checkpoint holds, and those names (with and without ':0').
    `checkpoint.load_checkpoint` does the copy itself."""
    import tensorflow as tf  # only when asked for: the layers use keras.ops alone

    stored = dict(tf.train.list_variables(init_checkpoint))
    assignment_map, initialized = {}, {}
    for variable in tvars:
        name = getattr(variable, "path", None) or variable.name.split(":")[0]
        if name in stored:
            assignment_map[name] = name
            initialized[name] = 1
            initialized[name + ":0"] = 1
    return assignment_map, initialized

"""Spatial softmax: the normalization Φ of the voting maps (Eq. 1)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class SpatialSoftmax(keras.layers.Layer):
  """Softmax over all H × W positions of each channel (Φ of Eq. 1).

  ``W[b, i, j, k] = exp(x[b, i, j, k]) / Σ_{i', j'} exp(x[b, i', j', k])``, so
  every channel of every sample sums to 1 over the map. The maximum of each
  channel is subtracted before the exponential, which keeps logits of any size
  finite and leaves the result unchanged.

  The layer computes in float32 whatever the global dtype policy (its dtype
  defaults to "float32"), so its output is float32 under mixed precision.

  Input shape: (B, H, W, N) logits. Output shape: (B, H, W, N) weights.
  """

  def __init__(self, **kwargs):
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)

  def call(self, logits):
    height, width, channels = logits.shape[1:]
    flat = ops.reshape(ops.cast(logits, "float32"),
                       (-1, height * width, channels))
    flat = flat - ops.stop_gradient(ops.max(flat, axis=1, keepdims=True))
    exp = ops.exp(flat)
    weights = exp / ops.sum(exp, axis=1, keepdims=True)
    return ops.reshape(weights, (-1, height, width, channels))

  def compute_output_shape(self, input_shape):
    return input_shape

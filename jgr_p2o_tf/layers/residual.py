"""Convolution + batch normalization units and the bottleneck residual module.

These are the "C" and "R" boxes of Figure 1. They are functions that add named
Keras layers to a functional graph; a block named ``name`` owns the layers
``{name}_conv``, ``{name}_bn``, ``{name}_relu`` (or, for a residual module,
``{name}_reduce_*``, ``{name}_spatial_*``, ``{name}_expand_*``,
``{name}_skip_*``, ``{name}_add`` and ``{name}_out``).
"""

import keras

from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers import fused_batch_norm

# Batch normalization as in the authors' TensorFlow 1 code: moving averages with
# momentum 0.95, epsilon 1e-5.
BATCH_NORM_MOMENTUM = 0.95
BATCH_NORM_EPSILON = 1e-5


def batch_normalization(name, dtype=None):
  """A batch normalization with the project's momentum and epsilon."""
  return fused_batch_norm.BatchNormalization(
      momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=name,
      dtype=dtype)


def conv_bn(x, filters, kernel_size, name, *, strides=1, relu=True):
  """Conv (no bias: BN supplies the shift) → BN (→ ReLU), "same" padding.

  Args:
    x: (B, H, W, C_in) features.
    filters: C_out.
    kernel_size: side of the square kernel.
    name: prefix of the layer names.
    strides: convolution stride.
    relu: whether a ReLU follows the normalization.

  Returns:
    (B, H / strides, W / strides, C_out) features.
  """
  x = conv2d.Conv2D(filters, kernel_size, strides=strides, padding="same",
                    use_bias=False, name=f"{name}_conv")(x)
  x = batch_normalization(f"{name}_bn")(x)
  if relu:
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
  return x


def residual_block(x, filters, name):
  """Bottleneck residual module of stacked hourglass networks.

  ``y = ReLU(BN(conv1×1(C)(r)) + skip(x))`` with
  ``r = ReLU(BN(conv3×3(C/2)(ReLU(BN(conv1×1(C/2)(x))))))`` and ``skip(x) = x``
  when the channel counts agree, else ``BN(conv1×1(C)(x))``. This is the
  post-activation form (BN and ReLU after each convolution), whose convolutions
  need no biases; with C = 128 it holds 53,760 trainable weights.

  Args:
    x: (B, H, W, C_in) features.
    filters: C, the output channels; must be even.
    name: prefix of the layer names.

  Returns:
    (B, H, W, C) features.
  """
  if filters % 2:
    raise ValueError(f"A residual module needs an even number of filters, got "
                     f"{filters}.")
  y = conv_bn(x, filters // 2, 1, f"{name}_reduce")
  y = conv_bn(y, filters // 2, 3, f"{name}_spatial")
  y = conv_bn(y, filters, 1, f"{name}_expand", relu=False)
  if x.shape[-1] == filters:
    skip = x
  else:
    skip = conv_bn(x, filters, 1, f"{name}_skip", relu=False)
  y = keras.layers.Add(name=f"{name}_add")([y, skip])
  return keras.layers.ReLU(name=f"{name}_out")(y)

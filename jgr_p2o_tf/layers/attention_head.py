"""The attention module of the attention-based baseline (Figure 3, Table 4)."""

import keras

from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers.initializers import small_kernel_initializer
from jgr_p2o_tf.layers.residual import residual_block
from jgr_p2o_tf.layers.spatial_softmax import SpatialSoftmax


def attention_voting_maps(features, num_joints, name):
  """Pixel weights from an attention module instead of the JGR module.

  ``W = Φ(conv1×1(R(X)))``: a residual module with a 3×3 convolution, a 1×1
  convolution to N channels (no bias: it would cancel in the softmax) and the
  spatial softmax Φ. Layers are named ``{name}_residual_*``, ``{name}_conv``
  and ``{name}_softmax``.

  Args:
    features: (B, h, w, C) backbone features X.
    num_joints: N.
    name: prefix of the layer names.

  Returns:
    (B, h, w, N) float32 weights, each channel summing to 1.
  """
  x = residual_block(features, features.shape[-1], f"{name}_residual")
  logits = conv2d.Conv2D(
      num_joints, 1, use_bias=False,
      kernel_initializer=small_kernel_initializer(), name=f"{name}_conv")(x)
  return SpatialSoftmax(name=f"{name}_softmax")(logits)

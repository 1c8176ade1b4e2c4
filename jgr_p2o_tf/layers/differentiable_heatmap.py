"""The differentiable 2.5D heat-map (DHM) baseline of Table 4."""

import keras
from keras import ops

from jgr_p2o_tf import geometry
from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers.initializers import small_kernel_initializer
from jgr_p2o_tf.layers.output_grid import pixel_uv
from jgr_p2o_tf.layers.spatial_softmax import SpatialSoftmax


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class DifferentiableHeatmap(keras.layers.Layer):
  """Latent 2.5D heat-map regression (Iqbal et al., ECCV 2018).

  The module that replaces P2O in the "Baseline with DHM Module" of Table 4.
  Per joint k, a 1×1 convolution gives heat-map logits, normalized by the
  spatial softmax into a 2D heat map H_k, and another 1×1 convolution a latent
  depth map Z_k; then, with (u_i, v_i) the uv of output pixel i on the grid
  of the layer's coordinate convention (``output_grid.pixel_uv``),

    ``u_k = Σ_i H_ki u_i``, ``v_k = Σ_i H_ki v_i`` (soft-argmax) and
    ``z_k = Σ_i H_ki Z_ki``.

  Unlike P2O it predicts no offsets and does not use the input depth: Z_k is
  the joint's normalized depth itself, as every pixel sees it. The heat-map
  convolution has no bias (a constant per channel cancels in the softmax). The
  softmax and the sums run in float32.

  Args:
    num_joints: N.
    coordinate_convention: one of ``geometry.COORDINATE_CONVENTIONS``.
    **kwargs: base Layer arguments.

  Call arguments:
    features: (B, h, w, C) features.

  Returns:
    (joints_uvz (B, N, 3), heat_maps H (B, h, w, N), depth_maps Z
    (B, h, w, N)), all float32.
  """

  def __init__(self, num_joints, coordinate_convention="project", **kwargs):
    super().__init__(**kwargs)
    self.num_joints = num_joints
    self.coordinate_convention = geometry.check_convention(
        coordinate_convention)

  def build(self, input_shape):
    self.heatmap_conv = conv2d.Conv2D(
        self.num_joints, 1, use_bias=False,
        kernel_initializer=small_kernel_initializer(), dtype=self.dtype_policy,
        name="heatmap_conv")
    self.depth_conv = conv2d.Conv2D(
        self.num_joints, 1, kernel_initializer=small_kernel_initializer(),
        dtype=self.dtype_policy, name="depth_conv")
    self.spatial_softmax = SpatialSoftmax(name="spatial_softmax")
    self.heatmap_conv.build(input_shape)
    self.depth_conv.build(input_shape)

  def call(self, features):
    height, width = features.shape[1:3]
    heat_maps = self.spatial_softmax(self.heatmap_conv(features))
    depth_maps = ops.cast(self.depth_conv(features), "float32")
    grid_uv = ops.convert_to_tensor(
        pixel_uv(height, width, self.coordinate_convention))
    uv = ops.einsum("bhwk,hwc->bkc", heat_maps, grid_uv)
    z = ops.sum(heat_maps * depth_maps, axis=(1, 2))[..., None]
    return ops.concatenate([uv, z], axis=-1), heat_maps, depth_maps

  def compute_output_shape(self, input_shape):
    maps_shape = tuple(input_shape[:3]) + (self.num_joints,)
    return (input_shape[0], self.num_joints, 3), maps_shape, maps_shape

  def get_config(self):
    config = super().get_config()
    config.update({"num_joints": self.num_joints,
                   "coordinate_convention": self.coordinate_convention})
    return config

"""The pixel-to-offset (P2O) prediction module (Sec. 3.3)."""

import keras
from keras import ops

from jgr_p2o_tf import geometry
from jgr_p2o_tf.layers import conv2d
from jgr_p2o_tf.layers.initializers import small_kernel_initializer
from jgr_p2o_tf.layers.output_grid import pixel_uvz


def offsets_to_joints(voting_maps, offset_maps, pixel_uvz_map):
  """Eq. 6: each joint is the weighted average of the pixels' votes for it.

  ``(u, v, z)_k = Σ_i w_ki ((u, v, z)_i + (Δu, Δv, Δz)_ki)``, in float32.
  This is the equation as the paper writes it. ``PixelToOffset`` computes
  the same sum split in two terms, in its convolution's layout, which
  trains faster; the tests check the two against each other.

  Args:
    voting_maps: (B, h, w, N) weights w, each channel summing to 1.
    offset_maps: (B, h, w, N, 3) offsets Δ from each pixel to each joint.
    pixel_uvz_map: (B, h, w, 3) UVZ of the pixels (``output_grid.pixel_uvz``).

  Returns:
    (B, N, 3) float32 normalized UVZ of the joints.
  """
  weights = ops.cast(voting_maps, "float32")[..., None]
  votes = (ops.cast(offset_maps, "float32") +
           ops.cast(pixel_uvz_map, "float32")[:, :, :, None, :])
  return ops.sum(weights * votes, axis=(1, 2))


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class PixelToOffset(keras.layers.Layer):
  """Predicts offset maps and aggregates them into joint positions.

  A 1×1 convolution without bias turns the (enhanced) features into 3N offset
  maps, the offsets (Δu, Δv, Δz) from every pixel to every joint, its channels
  ordered [Δu of the N joints, Δv of the N joints, Δz of the N joints] (the
  authors' three convolutions side by side); Eq. 6 then averages the pixels'
  votes with the voting maps W. A pixel's UVZ is its cell on the output grid
  and its depth in the crop (``output_grid.pixel_uvz``, in the layer's
  coordinate convention); the stride of the grid is the ratio of the crop's
  side to the features' side.

  The voting maps and the depth crop are used as given (float32), not cast to
  the layer's compute dtype, and the weighted average runs in float32.

  Args:
    num_joints: N.
    coordinate_convention: one of ``geometry.COORDINATE_CONVENTIONS``.
    **kwargs: base Layer arguments.

  Call arguments:
    features: (B, h, w, C) features X̄.
    voting_maps: (B, h, w, N) weights, each channel summing to 1.
    depth_crop: (B, S, S, 1) normalized depth crop, S a multiple of h.

  Returns:
    (joints_uvz (B, N, 3) float32, offset_maps (B, h, w, N, 3) float32).
  """

  def __init__(self, num_joints, coordinate_convention="project", **kwargs):
    # No autocasting of the inputs: the offset convolution casts the features
    # itself, and the voting maps and depths of Eq. 6 must stay float32.
    super().__init__(autocast=False, **kwargs)
    self.num_joints = num_joints
    self.coordinate_convention = geometry.check_convention(
        coordinate_convention)

  def build(self, features_shape, voting_maps_shape, depth_crop_shape):
    height, width = features_shape[1:3]
    if tuple(voting_maps_shape[1:]) != (height, width, self.num_joints):
      raise ValueError(f"Voting maps of shape {voting_maps_shape} do not fit "
                       f"features of shape {features_shape} and "
                       f"{self.num_joints} joints.")
    if (depth_crop_shape[1] % height or depth_crop_shape[2] % width or
        depth_crop_shape[1] // height != depth_crop_shape[2] // width):
      raise ValueError(f"The depth crop of shape {depth_crop_shape} is not an "
                       f"integer multiple of the {height}×{width} output grid.")
    self.offset_conv = conv2d.Conv2D(
        3 * self.num_joints, 1, use_bias=False,
        kernel_initializer=small_kernel_initializer(),
        dtype=self.dtype_policy, name="offset_conv")
    self.offset_conv.build(features_shape)

  def call(self, features, voting_maps, depth_crop):
    height, width = features.shape[1:3]
    pixels = height * width
    # Channel c·N + k is the offset to joint k along coordinate c.
    offsets = ops.reshape(ops.cast(self.offset_conv(features), "float32"),
                          (-1, pixels, 3, self.num_joints))
    weights = ops.reshape(ops.cast(voting_maps, "float32"),
                          (-1, pixels, self.num_joints))
    stride = depth_crop.shape[1] // height
    grid = ops.reshape(
        pixel_uvz(depth_crop, stride, self.coordinate_convention),
        (-1, pixels, 3))
    # Eq. 6 (offsets_to_joints) as Σ_i w_ki Δ_ki + Σ_i w_ki (u, v, z)_i: the
    # offsets are weighted in the convolution's layout and the pixels' UVZ
    # are not copied for every joint. A third less time, forward and
    # backward, on a CPU (16.5 → 11.4 ms a stack at batch 64).
    joints_uvz = ops.transpose(
        ops.sum(offsets * weights[:, :, None, :], axis=1), (0, 2, 1))
    joints_uvz = joints_uvz + ops.einsum("bik,bic->bkc", weights, grid)
    offset_maps = ops.reshape(ops.transpose(offsets, (0, 1, 3, 2)),
                              (-1, height, width, self.num_joints, 3))
    return joints_uvz, offset_maps

  def compute_output_shape(self, features_shape, voting_maps_shape,
                           depth_crop_shape):
    batch, height, width = features_shape[:3]
    return ((batch, self.num_joints, 3),
            (batch, height, width, self.num_joints, 3))

  def get_config(self):
    config = super().get_config()
    config.update({"num_joints": self.num_joints,
                   "coordinate_convention": self.coordinate_convention})
    return config

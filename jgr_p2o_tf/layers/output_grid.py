"""The network's output grid: the normalized UVZ of each output pixel.

One definition of the grid serves the pixel-to-offset module (Eq. 6), the
differentiable heat-map baseline and the ground-truth offset maps of the loss
(Eq. 8), so that the offsets the network learns and the offsets it is taught
are measured from the same points (ARCHITECTURE.md, "Output grid").

The grid depends on the model's coordinate convention
(``geometry.COORDINATE_CONVENTIONS``):
  * "project": cell (i, j) at uv ``((j + 0.5)/w, (i + 0.5)/h)``, the centre
    of the stride × stride block of crop pixels it covers, and Z the mean
    depth of that block;
  * "authors": cell (i, j) at ``(j/(w − 1), i/(h − 1))`` and Z the depth of
    crop pixel (stride·i, stride·j), which is what the authors' TF1 code
    computes: ``tf.image.resize_images`` (bilinear, align_corners off, no
    half-pixel centres) samples input position stride·i for output i, an
    exact pixel when the stride is an integer.
"""

import numpy as np
from keras import ops

from jgr_p2o_tf import geometry

# Output pixels per input pixel along each axis: a 96×96 crop gives 24×24 maps.
OUTPUT_STRIDE = 4


def pixel_uv(height, width, convention="project"):
  """Normalized UV of the cells of a height × width grid.

  Args:
    height, width: the grid's size.
    convention: one of ``geometry.COORDINATE_CONVENTIONS``.

  Returns:
    (height, width, 2) float32 NumPy array of (u, v).
  """
  u = geometry.pixel_to_normalized(np.arange(width, dtype=np.float64), width,
                                   convention)
  v = geometry.pixel_to_normalized(np.arange(height, dtype=np.float64),
                                   height, convention)
  uu, vv = np.meshgrid(u, v)
  return np.stack([uu, vv], axis=-1).astype(np.float32)


def pixel_uvz(depth_crop, stride=OUTPUT_STRIDE, convention="project"):
  """UVZ of each output pixel: its UV on the grid and its normalized depth.

  Z is the down-sampled depth image of Sec. 3.4: the crop's depth averaged
  over the stride × stride block of input pixels that the output pixel covers
  ("project"), or the block's top-left pixel ("authors").

  Args:
    depth_crop: (B, S, S, 1) normalized depth crop.
    stride: input pixels per output pixel; S must be a multiple of it.
    convention: one of ``geometry.COORDINATE_CONVENTIONS``.

  Returns:
    (B, S / stride, S / stride, 3) float32 tensor of (u, v, z).
  """
  size_h, size_w = depth_crop.shape[1], depth_crop.shape[2]
  if size_h % stride or size_w % stride:
    raise ValueError(f"The depth crop's size {size_h}×{size_w} is not a "
                     f"multiple of the output stride {stride}.")
  height, width = size_h // stride, size_w // stride
  depth = ops.cast(depth_crop, "float32")
  if geometry.check_convention(convention) == "authors":
    z = depth[:, ::stride, ::stride, :]
  else:
    blocks = ops.reshape(depth, (-1, height, stride, width, stride))
    z = ops.mean(blocks, axis=(2, 4))[..., None]
  uv = ops.zeros_like(z) + ops.convert_to_tensor(
      pixel_uv(height, width, convention))
  return ops.concatenate([uv, z], axis=-1)

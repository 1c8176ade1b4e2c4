"""The network's output grid: the normalized UVZ of each output pixel.

One definition of the grid serves the pixel-to-offset module (Eq. 6), the
differentiable heat-map baseline and the ground-truth offset maps of the loss
(Eq. 8), so that the offsets the network learns and the offsets it is taught
are measured from the same points (ARCHITECTURE.md, "Output grid").
"""

import numpy as np
from keras import ops

# Output pixels per input pixel along each axis: a 96×96 crop gives 24×24 maps.
OUTPUT_STRIDE = 4


def pixel_uv(height, width):
  """Normalized UV of the centres of a height × width grid.

  Pixel (i, j) has ``u = (j + 0.5) / width`` and ``v = (i + 0.5) / height``,
  so that 0 and 1 are the outer edges of the crop, as in the joints'
  normalized UVZ.

  Returns:
    (height, width, 2) float32 NumPy array of (u, v).
  """
  u = (np.arange(width, dtype=np.float32) + 0.5) / width
  v = (np.arange(height, dtype=np.float32) + 0.5) / height
  uu, vv = np.meshgrid(u, v)
  return np.stack([uu, vv], axis=-1)


def pixel_uvz(depth_crop, stride=OUTPUT_STRIDE):
  """UVZ of each output pixel: its centre's UV and its mean normalized depth.

  Z is the crop's depth average-pooled over the stride × stride block of input
  pixels that the output pixel covers (the down-sampled depth image of
  Sec. 3.4).

  Args:
    depth_crop: (B, S, S, 1) normalized depth crop.
    stride: input pixels per output pixel; S must be a multiple of it.

  Returns:
    (B, S / stride, S / stride, 3) float32 tensor of (u, v, z).
  """
  size_h, size_w = depth_crop.shape[1], depth_crop.shape[2]
  if size_h % stride or size_w % stride:
    raise ValueError(f"The depth crop's size {size_h}×{size_w} is not a "
                     f"multiple of the output stride {stride}.")
  height, width = size_h // stride, size_w // stride
  depth = ops.cast(depth_crop, "float32")
  blocks = ops.reshape(depth, (-1, height, stride, width, stride))
  z = ops.mean(blocks, axis=(2, 4))[..., None]
  uv = ops.zeros_like(z) + ops.convert_to_tensor(pixel_uv(height, width))
  return ops.concatenate([uv, z], axis=-1)

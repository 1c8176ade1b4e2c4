"""The recursive hourglass module (Newell et al., ECCV 2016), the backbone."""

import keras

from jgr_p2o_tf.layers.residual import residual_block


def hourglass(x, order, name):
  """An hourglass of the given order, built recursively.

  At each level: an upper branch ``residual(x)`` at the level's resolution and
  a lower branch ``upsample2(residual(inner(residual(maxpool(x)))))`` where
  ``inner`` is the hourglass of order - 1 (nothing at order 1); the output is
  their sum. The pooling is 3×3 with stride 2 and "same" padding, and the
  up-sampling nearest-neighbour, as in the authors' code. An hourglass of
  order n therefore holds 3n residual modules and needs H and W divisible by
  2^n (order 3: 24 → 12 → 6 → 3 → … → 24).

  Layers are named ``{name}_level{order}_{upper|pool|down|up|upsample|add}``.

  Args:
    x: (B, H, W, C) features.
    order: number of down-sampling levels (3 in JGR-P2O).
    name: prefix of the layer names, e.g. "stack1_hourglass".

  Returns:
    (B, H, W, C) features.
  """
  height, width, channels = x.shape[1:]
  if height % 2**order or width % 2**order:
    raise ValueError(f"An hourglass of order {order} needs a feature map "
                     f"whose sides are multiples of {2**order}, got "
                     f"{height}×{width}.")
  level = f"{name}_level{order}"
  upper = residual_block(x, channels, f"{level}_upper")
  lower = keras.layers.MaxPooling2D(3, strides=2, padding="same",
                                    name=f"{level}_pool")(x)
  lower = residual_block(lower, channels, f"{level}_down")
  if order > 1:
    lower = hourglass(lower, order - 1, name)
  lower = residual_block(lower, channels, f"{level}_up")
  lower = keras.layers.UpSampling2D(2, name=f"{level}_upsample")(lower)
  return keras.layers.Add(name=f"{level}_add")([upper, lower])

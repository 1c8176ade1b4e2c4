"""The kernel initializer of the layers that no batch normalization follows."""

import keras

# Truncated normal with σ = 0.01, as in the authors' code. Small kernels start
# the voting maps near uniform, the offsets near 0 and the logits of the
# feature-similarity graph far from saturation; the convolutions followed by
# a BN keep Keras' defaults, their scale being normalized away.
SMALL_KERNEL_STDDEV = 0.01


def small_kernel_initializer():
  """A new TruncatedNormal(0, 0.01) initializer (one per layer)."""
  return keras.initializers.TruncatedNormal(stddev=SMALL_KERNEL_STDDEV)

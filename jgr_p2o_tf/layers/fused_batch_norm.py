"""Batch normalization whose training step runs TensorFlow's fused kernel.

Keras 3's BatchNormalization computes a training batch's moments and the
normalization as separate ops on every backend. Under TensorFlow that costs
2.5–2.7× the fused kernel (``FusedBatchNormV3``, forward and backward; 24 vs
9 ms for a (64, 48, 48, 32) batch on a 2-core AMD EPYC), and a train step of
the demo's network holds as many batch normalizations as convolutions. JAX
fuses the separate ops itself (XLA), so it keeps Keras' path. keras.ops has
no fused batch norm, so this is the one layer that calls TensorFlow: imported
on that branch only, the package still imports without it (JAX machines).
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="jgr_p2o_tf")
class BatchNormalization(keras.layers.BatchNormalization):
  """``keras.layers.BatchNormalization`` with TensorFlow's fused kernel.

  The same weights (gamma, beta, moving_mean, moving_variance), arguments and
  config as the Keras layer, and the same maths:
  ``y = γ (x − μ_B) / sqrt(σ²_B + ε) + β`` with the batch's mean μ_B and biased
  variance σ²_B over every axis but the last while training, after which
  ``moving ← momentum · moving + (1 − momentum) · batch`` for both
  statistics; the moving statistics in place of the batch's at inference.
  On the TensorFlow backend, while training on a 4-D channels-last input
  without a mask, the normalization and its gradient are TensorFlow's fused
  kernel (in float32 under mixed precision, as Keras computes); everywhere
  else the layer is Keras' own.

  Named as Keras' layer on purpose: a ``.keras`` file addresses a layer's
  weights by its class's name, so models saved with Keras' layer load into
  this one and the other way round.

  Input and output shape: (B, H, W, C) (any rank on the Keras path).
  """

  def _fusable(self, inputs, training, mask):
    return (training and self.trainable and mask is None
            and keras.backend.backend() == "tensorflow"
            and len(inputs.shape) == 4 and self.axis in (-1, 3)
            and not self.renorm and not self.synchronized)

  def call(self, inputs, training=None, mask=None):
    if not self._fusable(inputs, training, mask):
      return super().call(inputs, training=training, mask=mask)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    x = ops.cast(inputs, "float32")
    channels = x.shape[-1]
    gamma = (ops.cast(self.gamma, "float32") if self.scale
             else ops.ones((channels,), "float32"))
    beta = (ops.cast(self.beta, "float32") if self.center
            else ops.zeros((channels,), "float32"))
    outputs, mean, unbiased_variance = tf.compat.v1.nn.fused_batch_norm(
        x, gamma, beta, epsilon=self.epsilon, data_format="NHWC",
        is_training=True)
    # The kernel returns the batch variance with Bessel's correction; the
    # moving variance averages the biased one, as Keras' layer does.
    count = ops.cast(ops.prod(ops.shape(x)[:-1]), "float32")
    variance = unbiased_variance * (count - 1.0) / count
    self.moving_mean.assign(self.moving_mean * self.momentum +
                            mean * (1.0 - self.momentum))
    self.moving_variance.assign(self.moving_variance * self.momentum +
                                variance * (1.0 - self.momentum))
    return ops.cast(outputs, self.compute_dtype)

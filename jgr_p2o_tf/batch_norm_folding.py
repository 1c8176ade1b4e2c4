"""Batch normalization folded into the convolutions before it, for inference.

With inference statistics, BN is the per-channel affine map
``y = γ (x − μ) / √(σ² + ε) + β``, so a convolution whose output feeds only a
BN becomes one convolution with kernel ``W γ/√(σ² + ε)`` and bias
``(b − μ) γ/√(σ² + ε) + β``. The exporter folds them because loaded variables
are not constants: neither grappler nor XLA can fold them at run time.
"""

import numpy as np


def fold_batch_norm(model):
  """A copy of a functional model with each Conv2D → BN pair as one Conv2D.

  The project's conv_bn units are such pairs (post-activation: the ReLU
  follows the BN). The BNs inside the JGR layer are not top-level layers
  and stay as they are.

  The copy keeps the layers' dtype policies, so a mixed precision model gives
  a mixed precision copy. Its outputs equal the model's in inference mode up
  to float rounding; it is for inference only.

  Args:
    model: a functional keras.Model (JGR-P2O or the centre refiner).

  Returns:
    (folded model, number of BN layers folded).
  """
  import keras  # pylint: disable=g-import-not-at-top
  bn_of_conv = {conv.name: bn for conv, bn in _conv_bn_pairs(model)}
  folded_bns = {bn.name for bn in bn_of_conv.values()}

  def clone_layer(layer):
    config = layer.get_config()
    if layer.name in bn_of_conv:
      config["use_bias"] = True
    return layer.__class__.from_config(config)

  def call_layer(layer, *args, **kwargs):
    # A folded BN is left out of the copy's graph altogether.
    if layer.name in folded_bns:
      return args[0]
    return layer(*args, **kwargs)

  from jgr_p2o_tf import model as model_lib  # pylint: disable=g-import-not-at-top
  clone = keras.models.clone_model(model, clone_function=clone_layer,
                                   call_function=call_layer)
  # Keep the one-dict-per-stack list of build_model's class; another model
  # (the centre refiner) becomes a plain functional one.
  functional = (model_lib.StackOutputsModel
                if isinstance(model, model_lib.StackOutputsModel)
                else keras.Model)
  folded = functional(clone.input, clone.output, name=model.name)
  for layer in model.layers:
    if layer.name in folded_bns or not layer.weights:
      continue
    target = folded.get_layer(layer.name)
    if layer.name in bn_of_conv:
      target.set_weights(_folded_conv_weights(layer, bn_of_conv[layer.name]))
    else:
      target.set_weights(layer.get_weights())
  return folded, len(bn_of_conv)


def _conv_bn_pairs(model):
  """(Conv2D, BatchNormalization) layer pairs that can be folded."""
  import keras  # pylint: disable=g-import-not-at-top
  # Keras keeps a functional graph's wiring in its layers' nodes.
  # pylint: disable=protected-access
  pairs = []
  for bn in model.layers:
    if (not isinstance(bn, keras.layers.BatchNormalization) or
        len(bn._inbound_nodes) != 1 or
        len(bn._inbound_nodes[0].parent_nodes) != 1):
      continue
    conv = bn._inbound_nodes[0].parent_nodes[0].operation
    # A linear convolution, channels last on both sides, read by nothing but
    # the BN: the fold changes its output.
    if (isinstance(conv, keras.layers.Conv2D) and
        conv.get_config()["activation"] == "linear" and
        conv.data_format == "channels_last" and bn.axis in (-1, 3) and
        len(conv._inbound_nodes) == 1 and len(conv._outbound_nodes) == 1):
      pairs.append((conv, bn))
  return pairs


def _folded_conv_weights(conv, bn):
  """[kernel, bias] of the convolution that does conv then bn (inference)."""
  kernel = np.asarray(conv.kernel, np.float64)
  bias = (np.asarray(conv.bias, np.float64) if conv.use_bias
          else np.zeros(kernel.shape[-1]))
  gamma = (np.asarray(bn.gamma, np.float64) if bn.scale
           else np.ones(kernel.shape[-1]))
  beta = (np.asarray(bn.beta, np.float64) if bn.center
          else np.zeros(kernel.shape[-1]))
  mean = np.asarray(bn.moving_mean, np.float64)
  scale = gamma / np.sqrt(np.asarray(bn.moving_variance, np.float64) +
                          bn.epsilon)
  return [(kernel * scale).astype(np.float32),
          ((bias - mean) * scale + beta).astype(np.float32)]

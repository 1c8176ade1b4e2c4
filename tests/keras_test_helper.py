"""Shared checks for the project's Keras layers and models.

``run_layer_test`` plays the part of keras-hub's ``run_layer_test``: one call
checks a layer's config round trip, symbolic and eager calls, one ``fit`` step
of a tiny model around it and its dtypes under mixed precision.
``trainable_gradients`` differentiates a loss with the active backend.
"""

import inspect

import keras
import numpy as np
from keras import ops
from keras import tree

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


def _as_tuple(structure):
  return tuple(tree.flatten(structure))


def _check_config_round_trip(layer_cls, init_kwargs):
  layer = layer_cls(**init_kwargs)
  config = layer.get_config()
  parameters = inspect.signature(layer_cls.__init__).parameters.values()
  arguments = [p.name for p in parameters
               if p.name != "self" and p.kind is not p.VAR_KEYWORD]
  missing = [name for name in arguments if name not in config]
  assert not missing, f"get_config() lacks constructor arguments {missing}"
  revived = layer_cls.from_config(config)
  assert revived.get_config() == config
  serialized = keras.saving.serialize_keras_object(layer)
  revived = keras.saving.deserialize_keras_object(serialized)
  assert type(revived) is layer_cls and revived.get_config() == config
  return config


def _check_symbolic_call(layer_cls, config, input_data, expected_shapes):
  inputs = {name: keras.Input(shape=value.shape[1:], dtype=value.dtype)
            for name, value in input_data.items()}
  outputs = _as_tuple(layer_cls.from_config(config)(**inputs))
  expected = tuple((None,) + shape[1:] for shape in expected_shapes)
  assert tuple(tuple(o.shape) for o in outputs) == expected


def _check_eager_call(layer_cls, config, input_data, expected_shapes):
  layer = layer_cls.from_config(config)
  outputs = _as_tuple(layer(**input_data))
  assert tuple(tuple(o.shape) for o in outputs) == expected_shapes
  for output in outputs:
    assert np.all(np.isfinite(ops.convert_to_numpy(output)))
  revived = layer_cls.from_config(config)
  revived(**input_data)
  revived.set_weights(layer.get_weights())
  for a, b in zip(outputs, _as_tuple(revived(**input_data))):
    np.testing.assert_array_equal(ops.convert_to_numpy(a),
                                  ops.convert_to_numpy(b))


def _check_fit_step(layer_cls, config, input_data):
  """One Adam step on mean squares of the outputs moves every weight.

  With Adam's ε negligible, the first step moves every weight whose gradient
  is not zero by about the learning rate, however small the gradient.
  """
  inputs = {name: keras.Input(shape=value.shape[1:], dtype=value.dtype,
                              name=name)
            for name, value in input_data.items()}
  layer = layer_cls.from_config(config)
  outputs = _as_tuple(layer(**inputs))
  objective = ops.stack([
      ops.mean(ops.square(ops.cast(o, "float32")),
               axis=tuple(range(1, len(o.shape)))) for o in outputs], axis=1)
  model = keras.Model(inputs, objective)
  model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-20),
                loss="mse")
  before = [ops.convert_to_numpy(v) for v in layer.trainable_variables]
  batch = next(iter(input_data.values())).shape[0]
  history = model.fit(input_data, np.ones((batch, len(outputs)), "float32"),
                      batch_size=batch, epochs=1, verbose=0)
  assert np.isfinite(history.history["loss"][0])
  for variable, old in zip(layer.trainable_variables, before):
    assert np.any(ops.convert_to_numpy(variable) != old), (
        f"{variable.path} did not change in a fit step")


def _check_mixed_precision(layer_cls, config, input_data, float32_outputs):
  config = {k: v for k, v in config.items() if k != "dtype"}
  previous = keras.config.dtype_policy()
  try:
    for policy in MIXED_POLICIES:
      keras.config.set_dtype_policy(policy)
      layer = layer_cls.from_config(config)
      outputs = _as_tuple(layer(**input_data))
      compute_dtype = keras.DTypePolicy(policy).compute_dtype
      for index, output in enumerate(outputs):
        expected = "float32" if index in float32_outputs else compute_dtype
        assert keras.backend.standardize_dtype(output.dtype) == expected, (
            f"output {index} is {output.dtype} under {policy}")
        values = ops.convert_to_numpy(ops.cast(output, "float32"))
        assert np.all(np.isfinite(values))
  finally:
    keras.config.set_dtype_policy(previous)


def run_layer_test(layer_cls, init_kwargs, input_data, expected_output_shape,
                   *, float32_outputs=(), run_fit=True):
  """Checks a layer against the conventions of the project.

  Args:
    layer_cls: the Layer class.
    init_kwargs: constructor arguments.
    input_data: dict of call argument name → NumPy array (batch first).
    expected_output_shape: the output's shape, or a tuple of shapes for
      several outputs, in the order the layer returns them.
    float32_outputs: indices of the outputs that must be float32 under mixed
      precision; the others must have the policy's compute dtype.
    run_fit: whether to run the fit step (layers without weights skip it).
  """
  if isinstance(expected_output_shape[0], int):
    expected_output_shape = (expected_output_shape,)
  expected = tuple(tuple(s) for s in expected_output_shape)
  config = _check_config_round_trip(layer_cls, init_kwargs)
  _check_symbolic_call(layer_cls, config, input_data, expected)
  _check_eager_call(layer_cls, config, input_data, expected)
  if run_fit:
    _check_fit_step(layer_cls, config, input_data)
  _check_mixed_precision(layer_cls, config, input_data, float32_outputs)


def trainable_gradients(model, loss_fn, inputs):
  """Gradients of ``loss_fn(model(inputs, training=True))`` as NumPy arrays.

  Returns a list aligned with ``model.trainable_variables``; None where the
  loss does not depend on the variable.
  """
  backend = keras.backend.backend()
  if backend == "tensorflow":
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    with tf.GradientTape() as tape:
      loss = loss_fn(model(inputs, training=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    return [None if g is None else np.asarray(g) for g in gradients]
  if backend == "jax":
    import jax  # pylint: disable=g-import-not-at-top
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss_of(trainable):
      outputs, _ = model.stateless_call(trainable, non_trainable, inputs,
                                        training=True)
      return loss_fn(outputs)

    gradients = jax.grad(loss_of)([v.value for v in model.trainable_variables])
    return [np.asarray(g) for g in gradients]
  raise NotImplementedError(f"No gradient helper for backend {backend!r}.")

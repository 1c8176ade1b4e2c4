"""One TrainStep from given weights, the same code under either backend.

``test_train_step`` runs it under TensorFlow and, in a subprocess, under JAX;
this module imports neither backend itself.
"""

import keras
import numpy as np
from keras import ops

from jgr_p2o_tf import train_step

LEARNING_RATE = 1e-3


def one_step(model, batch, parameters, transform):
  """Augments with ``transform``, runs one TrainStep; what it computed."""
  depth, joints_uvz = transform(batch["depth"], batch["joints_uvz"],
                                batch["cube"], *parameters)
  before = [ops.convert_to_numpy(v) for v in model.trainable_variables]
  # With a negligible ε, Adam's first step moves every weight whose gradient
  # is not zero by the learning rate.
  optimizer = keras.optimizers.Adam(LEARNING_RATE, epsilon=1e-20)
  step = train_step.TrainStep(model, optimizer,
                              train_step.StepConfig(augmentation=None),
                              jit_compile=False)
  loss, parts = step({"depth": depth, "joints_uvz": joints_uvz,
                      "cube": batch["cube"]}, np.array([0, 0], np.int32))
  step.sync_variables()
  # Adam's first moment starts at zero: after one step it is (1 - β1) g.
  momentums = [ops.convert_to_numpy(v) for v in optimizer.variables
               if v.path.endswith("_momentum")]
  results = {"depth": depth, "joints_uvz": joints_uvz, "loss": loss,
             "coordinate": parts[0]["coordinate"],
             "offset": parts[0]["offset"]}
  for i, (old, variable, momentum) in enumerate(zip(
      before, model.trainable_variables, momentums)):
    results[f"gradient{i}"] = momentum / (1 - optimizer.beta_1)
    results[f"change{i}"] = ops.convert_to_numpy(variable) - old
  for i, variable in enumerate(model.non_trainable_variables):
    results[f"non_trainable{i}"] = variable
  return {key: ops.convert_to_numpy(value) for key, value in results.items()}

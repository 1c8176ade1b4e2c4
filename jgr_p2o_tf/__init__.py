"""JGR-P2O (Fang et al., ECCV 2020) in TensorFlow 2 / Keras 3."""

from jgr_p2o_tf import quiet_logs

# Before anything imports TensorFlow: its C++ notices stay off the terminal.
quiet_logs.install()


def __getattr__(name):
  # build_model is imported on first use so that importing the package does
  # not import Keras and its backend.
  if name == "build_model":
    from jgr_p2o_tf.model import build_model  # pylint: disable=g-import-not-at-top
    return build_model
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

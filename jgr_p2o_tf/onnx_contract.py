"""What an ONNX export promises its clients: graphs, names and metadata.

``onnx_export`` writes it and ``inference`` reads it; this module imports
neither TensorFlow, Keras nor ``onnx``, so that a machine with onnxruntime
or OpenVINO alone can serve the model. An ONNX export of format ``FORMAT``
version ``FORMAT_VERSION`` is a folder of two ONNX graphs, the SavedModel's
two signatures with the same tensor names (``saved_model_contract``):

  * ``FULL_FRAME_FILE``: ``depth`` (B, H, W) float32 mm, any H × W, 0 for
    holes; ``centre_xyz`` (B, 3); ``intrinsics`` (B, 4) → ``joints_xyz``,
    ``joints_uvd``, ``joints_uvz`` (B, J, 3). The cube crop is in the graph.
  * ``CROP_FILE``: ``depth_crop`` (B, S, S, 1) normalized crops →
    ``joints_uvz`` (B, J, 3) and ``voting_maps`` (B, S/4, S/4, J) of the last
    stack.

Both return ``joints_uvz`` in the project's coordinate convention, whatever
the network's. Unlike the SavedModel, the graphs do not check their inputs
(ONNX has no assertions); ``inference.Predictor`` does it before calling
them.

The metadata is the SavedModel's (skeleton, joint names and bones, cube,
crop size, the network's coordinate convention, default camera, ...) with
this format, the opset and converter, and ``graphs`` in place of
``signatures``. Each graph carries it as its ONNX metadata properties, one
property ``PROPERTY_PREFIX + key`` per key with the value in JSON
(``metadata_properties``), which onnxruntime and OpenVINO both expose; other
tools' properties (onnxruntime's quantization adds some) are left alone.
``{export_dir}/METADATA_FILE`` is a copy.
"""

import json

from jgr_p2o_tf import saved_model_contract

FORMAT = "jgr_p2o_tf.onnx"
FORMAT_VERSION = 1
CROP_FILE = "crop.onnx"
FULL_FRAME_FILE = "full_frame.onnx"
METADATA_FILE = saved_model_contract.METADATA_FILE
# The SavedModel signature each graph reproduces.
SIGNATURES = {FULL_FRAME_FILE: saved_model_contract.SIGNATURE_FULL_FRAME,
              CROP_FILE: saved_model_contract.SIGNATURE_CROP}
PROPERTY_PREFIX = "jgr_p2o_tf."


def metadata(saved_model_metadata, *, opset, converter):
  """The ONNX export's metadata from the SavedModel's of the same network.

  Args:
    saved_model_metadata: ``saved_model_contract.metadata`` of the network
      (with ``jit_compile`` False; XLA plays no part here).
    opset: the ONNX opset of the graphs.
    converter: what converted them, e.g. "tf2onnx 1.17.0".
  """
  result = {k: v for k, v in saved_model_metadata.items()
            if k not in ("jit_compile", "signatures")}
  signatures = saved_model_metadata["signatures"]
  result.update(
      format=FORMAT, format_version=FORMAT_VERSION, opset=int(opset),
      converter=converter,
      graphs={name: signatures[signature]
              for name, signature in SIGNATURES.items()})
  return result


def metadata_properties(metadata_dict):
  """The metadata as ONNX metadata properties: prefixed key → JSON value."""
  return {PROPERTY_PREFIX + key: json.dumps(value)
          for key, value in metadata_dict.items()}


def parse_metadata(properties, path):
  """The metadata dict from a graph's metadata properties.

  Args:
    properties: the key → string map a runtime gives (onnxruntime's
      ``custom_metadata_map``, OpenVINO's rt_info "framework").
    path: the .onnx file, for the errors.

  Raises:
    ValueError: naming ``path``: no metadata of this project, unreadable
      values, or another format version (``check_format``).
  """
  ours = {key[len(PROPERTY_PREFIX):]: value
          for key, value in properties.items()
          if key.startswith(PROPERTY_PREFIX)}
  if "format" not in ours:
    raise ValueError(f"{path}: an ONNX model without the metadata of "
                     f"python -m jgr_p2o_tf.export --format=onnx")
  try:
    result = {key: json.loads(value) for key, value in ours.items()}
  except json.JSONDecodeError as e:
    raise ValueError(f"{path}: metadata property that is not JSON ({e})"
                     ) from None
  saved_model_contract.check_format(result, path, FORMAT, FORMAT_VERSION)
  return result

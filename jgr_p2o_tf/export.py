r"""Exports a trained model as a SavedModel or as ONNX graphs for serving.

  python -m jgr_p2o_tf.export --model_dir=runs/nyu \
      --export_dir=runs/nyu/saved_model
  python -m jgr_p2o_tf.export --model_dir=runs/nyu --format=onnx \
      --export_dir=runs/nyu/onnx

Takes the model of a training run that ``run_dir``'s rule picks (its final
``last.keras`` unless a validation split chose ``best.keras``), or
``--model``'s, folds batch normalization into the convolutions and writes,
with ``--format=saved_model``, a SavedModel with a full-frame signature
(depth frame + hand centre + intrinsics → joints in mm) and a crop signature
(see ``jgr_p2o_tf.exporter``), or with ``--format=onnx`` the same two as ONNX
graphs for onnxruntime and OpenVINO (``jgr_p2o_tf.onnx_export``). The cube
edges come from the manifest of the run's training records, or from
``--cube_mm``.

``--centre_refiner_dir`` (``train --task=centre`` runs, e.g. the demo's
coarse and fine refiners) bundles centre refiners into the SavedModel: its
``serving_default`` then takes the depth frames and intrinsics only and
finds the hand itself (rough centre, then one refinement step per listed
run), and the signature with a centre is ``full_frame_with_centre``
(``saved_model_contract``).
"""

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import train_config

_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "The --model_dir of a training run.")
_MODEL = flags.DEFINE_string(
    "model", None, "best, last (the run's best.keras / last.keras) or a "
    "path to a .keras file; default: best.keras if a validation split chose "
    "it, else the final last.keras.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "The directory to write: the SavedModel, or the ONNX "
    "graphs.")
_FORMAT = flags.DEFINE_enum(
    "format", "saved_model", ["saved_model", "onnx"],
    "saved_model: a TensorFlow SavedModel; onnx: ONNX graphs (float32) for "
    "onnxruntime and OpenVINO (pip install .[onnx]).")
_CUBE_MM = flags.DEFINE_list(
    "cube_mm", None, "Cube edge in mm, one number or x,y,z; default: the "
    "training records' manifest.")
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "none", train_config.MIXED_PRECISION,
    "Compute dtype of the exported network; weights stay float32. "
    "SavedModel only.")
_JIT_COMPILE = flags.DEFINE_boolean(
    "jit_compile", True, "Compile the network with XLA when served (turn "
    "off for servers built without XLA). SavedModel only.")
_FOLD_BATCH_NORM = flags.DEFINE_boolean(
    "fold_batch_norm", True, "Fold batch normalization into convolutions.")
_OVERWRITE = flags.DEFINE_boolean(
    "overwrite", False, "Replace an export of the same format already at "
    "--export_dir.")

_CENTRE_REFINER_DIR = flags.DEFINE_list(
    "centre_refiner_dir", [], "Centre refiner runs (python -m "
    "jgr_p2o_tf.train --task=centre) to bundle, one per refinement step in "
    "this order (a run listed twice is applied twice): serving_default "
    "then takes no centre. SavedModel only.")

flags.mark_flags_as_required(["model_dir", "export_dir"])


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  cube = (None if _CUBE_MM.value is None
          else cli.numbers(_CUBE_MM, (1, 3), positive=True))
  if _FORMAT.value == "onnx":
    if _CENTRE_REFINER_DIR.value:
      raise ValueError("--centre_refiner_dir is for --format=saved_model; "
                       "the ONNX export takes its centre as an input")
    if _MIXED_PRECISION.value != "none":
      raise ValueError("--mixed_precision is for --format=saved_model; the "
                       "ONNX export is float32")
    from jgr_p2o_tf import onnx_export  # pylint: disable=g-import-not-at-top
    metadata = onnx_export.export_onnx_from_model_dir(
        _MODEL_DIR.value, _EXPORT_DIR.value, model=_MODEL.value,
        cube_mm=cube, fold_batch_norm_layers=_FOLD_BATCH_NORM.value,
        overwrite=_OVERWRITE.value)
    entry_points = f"graphs {', '.join(metadata['graphs'])}"
  else:
    from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
    metadata = exporter.export_from_model_dir(
        _MODEL_DIR.value, _EXPORT_DIR.value, model=_MODEL.value,
        cube_mm=cube, mixed_precision=_MIXED_PRECISION.value,
        jit_compile=_JIT_COMPILE.value,
        fold_batch_norm_layers=_FOLD_BATCH_NORM.value,
        overwrite=_OVERWRITE.value,
        centre_refiner_dirs=_CENTRE_REFINER_DIR.value)
    entry_points = f"signatures {', '.join(metadata['signatures'])}"
  cli.write_flags(_EXPORT_DIR.value)
  print(f"exported {metadata['source']} to {_EXPORT_DIR.value}: "
        f"{metadata['skeleton']} skeleton ({metadata['num_joints']} joints), "
        f"cube {metadata['cube_mm']} mm, {metadata['dtype_policy']}, "
        f"{metadata['batch_norm_folded']} batch norms folded, {entry_points}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()

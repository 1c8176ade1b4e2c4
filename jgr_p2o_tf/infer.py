r"""Predicts hand poses in depth images with an exported model.

  python -m jgr_p2o_tf.infer --model=runs/nyu/saved_model \
      --dataset=nyu --output_dir=out depth_1_0000001.png depth_1_0000002.png
  python -m jgr_p2o_tf.infer --model=runs/nyu/onnx --runtime=openvino ...

``--model`` is a SavedModel (run by TensorFlow) or an ONNX export (run by
onnxruntime or OpenVINO, ``--runtime``) of ``python -m jgr_p2o_tf.export``;
``--saved_model`` is another name for it.

Writes ``{output_dir}/predictions.json`` (per image: the hand centre and the
joints in xyz mm and full-frame uvd) and, unless ``--noplot``, one PNG per
image with the skeleton drawn on the depth, coloured per finger, zoomed to
the hand beside the whole frame (``--full_frame``: the whole frame only).
Each image's hand centre is ``--centre`` or, by default, found by the
SavedModel itself when it bundles a centre refiner (``export
--centre_refiner_dir``: rough centre, then the refiners; an image where it
finds none is written as "no hand found"), or else computed from the depth
(the nearest object's centre of mass, ``datasets.centres.compute_centre``).

The camera is ``--dataset``'s, or the one stored in the model at export;
``--camera`` overrides the intrinsics. See ``jgr_p2o_tf.inference`` for the
image formats.
"""

import os

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import inference

_MODEL = flags.DEFINE_string(
    "model", None, "A SavedModel or an ONNX export written by python -m "
    "jgr_p2o_tf.export.")
flags.DEFINE_alias("saved_model", "model")
_RUNTIME = flags.DEFINE_enum(
    "runtime", None, inference.RUNTIMES,
    "What runs the model: tensorflow (a SavedModel), onnxruntime or openvino "
    "(an ONNX export); default: tensorflow for a SavedModel, onnxruntime for "
    "an ONNX export.")
_DATASET = flags.DEFINE_enum(
    "dataset", None, dataset_profiles.NAMES,
    "Camera and image format of the images; default: the model's camera.")
_CAMERA = flags.DEFINE_list(
    "camera", None, "fx,fy,cx,cy[,width,height] of the depth camera, "
    "overriding --dataset's or the model's intrinsics.")
_CENTRE = flags.DEFINE_list(
    "centre", None, "x,y,z hand centre in mm for every image; default: "
    "found in each image (by the export's centre refiners if it has them).")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Where to write predictions.json and the figures.")
_PLOT = flags.DEFINE_boolean("plot", True,
                             "Write a PNG per image with the skeleton.")
_FULL_FRAME = flags.DEFINE_boolean(
    "full_frame", False, "Draw the whole frame in the PNGs, not the view "
    "zoomed to the hand beside the whole frame.")

flags.mark_flags_as_required(["model", "output_dir"])


def main(argv):
  paths = argv[1:]
  if not paths:
    raise ValueError("give the depth images to run on after the flags")
  for path in paths:
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: no such file")
  centre = None if _CENTRE.value is None else cli.numbers(_CENTRE, (3,))
  intrinsics = (None if _CAMERA.value is None
                else cli.numbers(_CAMERA, (4, 6)))
  # Imported here: flag errors need none of matplotlib.
  from jgr_p2o_tf import visualize  # pylint: disable=g-import-not-at-top
  predictor = inference.Predictor(_MODEL.value, _RUNTIME.value)
  camera = inference.resolve_camera(predictor, _DATASET.value, intrinsics)
  dataset = _DATASET.value or predictor.metadata.get("dataset")
  output_dir = _OUTPUT_DIR.value
  os.makedirs(output_dir, exist_ok=True)
  taken = set()

  def plot(result, depth):
    if not result["hand_found"]:
      return
    name = inference.plot_file_name(result["file"], taken)
    result["plot"] = name
    figure = visualize.plot_depth_with_joints(
        depth, result["joints_uvd"], predictor.skeleton,
        centre_uvd=result["centre_uvd"],
        title=os.path.basename(result["file"]), full_frame=_FULL_FRAME.value)
    with open(os.path.join(output_dir, name), "wb") as f:
      f.write(visualize.figure_to_png_bytes(figure))

  results = inference.predict_files(
      predictor, paths, camera, dataset=dataset, centre_xyz=centre,
      on_frame=plot if _PLOT.value else None)
  path = os.path.join(output_dir, inference.PREDICTIONS_FILE)
  inference.write_predictions(path, predictor, camera, results)
  cli.write_flags(output_dir)
  missing = sum(not r["hand_found"] for r in results)
  print(f"{len(results)} images ({missing} with no hand found): {path}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()

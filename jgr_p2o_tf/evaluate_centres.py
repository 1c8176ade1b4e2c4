r"""How far the full-frame path's hand centre is from the reference centre.

  python -m jgr_p2o_tf.evaluate_centres --dataset=synthetic \
      --data_dir=runs/demo/raw --split=test --num_frames=200 \
      --centre_refiner_dir=runs/demo/centre,runs/demo/centre_fine \
      [--saved_model=runs/demo/saved_model] [--output_json=centres.json]

Prints the centre error in mm (median, 90th percentile, share over 20 mm)
of the rough centre (``datasets.centres.compute_centre``) and after each
refinement step (``--centre_refiner_dir``, ``train --task=centre`` runs), the
reference being the annotation's centre (``ground_truth_centre``, the
centre synthetic records are cut around). With ``--saved_model``, an export
bundling a refiner, also the mean joint error of the full-frame pipeline
finding the hand itself vs given the reference centres
(``centre_evaluation``).
"""

import json

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles

_DATASET = flags.DEFINE_enum("dataset", None, dataset_profiles.NAMES,
                             "The raw dataset's reader.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "The raw dataset's root.")
_SPLIT = flags.DEFINE_string("split", "test", "The split to read.")
_NUM_FRAMES = flags.DEFINE_integer("num_frames", None,
                                   "Its first frames only.", lower_bound=1)
_CENTRE_REFINER_DIR = flags.DEFINE_list(
    "centre_refiner_dir", [], "The refinement steps: centre refiner runs "
    "(train --task=centre), applied in this order (a run listed twice is "
    "applied twice); without them only the rough centre is measured.")
_CUBE_MM = flags.DEFINE_float(
    "cube_mm", None, "The pose cube the rough centre is refined in; default "
    "the dataset's.")
_SAVED_MODEL = flags.DEFINE_string(
    "saved_model", None, "An export bundling a centre refiner: also measure "
    "the joint error finding the hand vs on the reference centres.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None,
                                   "Where to write the report as JSON.")

flags.mark_flags_as_required(["dataset", "data_dir"])


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  # Imported here: flag errors need no TensorFlow.
  from jgr_p2o_tf import centre_evaluation  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import exporter  # pylint: disable=g-import-not-at-top
  refiners = [exporter.load_centre_refiner(d)[0]
              for d in _CENTRE_REFINER_DIR.value]
  frames = centre_evaluation.read_frames(_DATASET.value, _DATA_DIR.value,
                                         _SPLIT.value, _NUM_FRAMES.value)
  cube = (_CUBE_MM.value if _CUBE_MM.value is not None
          else dataset_profiles.get_profile(_DATASET.value).cube_mm)
  report = centre_evaluation.centre_report(refiners, frames, cube)
  if _SAVED_MODEL.value:
    from jgr_p2o_tf import inference  # pylint: disable=g-import-not-at-top
    report["joint_errors"] = centre_evaluation.full_frame_joint_errors(
        inference.Predictor(_SAVED_MODEL.value), frames)
  print(centre_evaluation.format_report(report))
  if _OUTPUT_JSON.value:
    with open(_OUTPUT_JSON.value, "w", encoding="utf-8") as f:
      json.dump(report, f, indent=2)
      f.write("\n")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()

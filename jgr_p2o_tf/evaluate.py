"""Evaluates 3D hand pose predictions against the ground truth.

File mode: prediction files in the community text format (one frame per line,
J × ``u v d``) against a label file in the same format, e.g. the published
results:

  python -m jgr_p2o_tf.evaluate --dataset=nyu \
    --labels=nyu/nyu_test_groundtruth_label.txt \
    --predictions=nyu/CVPR18_NYU_V2V_PoseNet.txt,nyu/ICCVW17_NYU_DeepPrior++.txt \
    --names=V2V-PoseNet,DeepPrior++ --plot=curves.png --output_json=out.json

Prints a table, and writes the report (``jgr_p2o_tf.evaluation``) as JSON and
the comparison figure when asked to.
"""

import sys

from absl import app
from absl import flags

from jgr_p2o_tf import evaluation

_DATASET = flags.DEFINE_string(
    "dataset", None, "Joint layout and evaluation intrinsics: nyu, icvl, msra "
    "or synthetic.")
_LABELS = flags.DEFINE_string(
    "labels", None, "Ground-truth file in the text format (J × u v d a line).")
_PREDICTIONS = flags.DEFINE_list(
    "predictions", None, "Comma-separated prediction files, same format and "
    "frame order as --labels.")
_NAMES = flags.DEFINE_list(
    "names", None, "Method names, one per prediction file; the files' base "
    "names by default.")
_PLOT = flags.DEFINE_string(
    "plot", None, "Where to save the comparison figure (e.g. curves.png).")
_OUTPUT_JSON = flags.DEFINE_string(
    "output_json", None, "Where to write the report as JSON.")


def _parse_flags(argv):
  """absl's flag parsing, with its errors as one line like the others."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f"evaluate: error: {e}")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"evaluate: error: unexpected arguments {argv[1:]}")
  for flag in (_DATASET, _LABELS, _PREDICTIONS):
    if not flag.value:
      sys.exit(f"evaluate: error: --{flag.name} is required")
  try:
    report = evaluation.evaluate_prediction_files(
        _DATASET.value, _LABELS.value, _PREDICTIONS.value, _NAMES.value)
    print(evaluation.format_table(report))
    if _OUTPUT_JSON.value:
      evaluation.write_report_json(report, _OUTPUT_JSON.value)
    if _PLOT.value:
      evaluation.save_report_plot(report, _PLOT.value)
  except (ValueError, OSError) as e:
    # Bad input is the user's to fix: say what, without a traceback.
    sys.exit(f"evaluate: error: {e}")


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)

r"""Evaluates 3D hand pose predictions against the ground truth.

File mode: prediction files in the community text format (one frame per line,
J × ``u v d``) against a label file in the same format, e.g. the published
results:

  python -m jgr_p2o_tf.evaluate --dataset=nyu \
    --labels=nyu/nyu_test_groundtruth_label.txt \
    --predictions=nyu/CVPR18_NYU_V2V_PoseNet.txt,nyu/ICCVW17_NYU_DeepPrior++.txt \
    --names=V2V-PoseNet,DeepPrior++ --plot=curves.png --output_json=out.json

Model mode: a trained model (``--model_dir`` of the trainer, or a .keras
file) on a split prepared by data_prep; also writes our predictions and the
ground truth in the community text format, so that they can be compared with
published methods in file mode. The run's model is ``run_dir``'s rule's (its
final model unless a validation split chose ``best.keras``) or ``--model``'s;
a best.keras is never scored on the frames that chose it:

  python -m jgr_p2o_tf.evaluate --dataset=nyu --model_dir=runs/nyu \
    --data_dir=DATA/nyu_records/test --predictions_out=ours.txt \
    --labels_out=labels.txt --plot=curves.png --output_json=out.json

The records, the model and --dataset must agree (the records' manifest names
their dataset and joint layout, the model file its layout), or the command
stops with one line saying which disagree. In file mode, --dataset=synthetic
takes the joint layout from the label file's joint count, as the synthetic
reader does, so the files of the model mode read back.

``--model_dir`` may also be an export of ``python -m jgr_p2o_tf.export``
(a SavedModel, or ONNX graphs run by ``--runtime=onnxruntime|openvino``),
whose crop graph then predicts the same crops.

Prints a table, and writes the report (``jgr_p2o_tf.evaluation``) as JSON and
the comparison figure when asked to.
"""

import os

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import evaluation
from jgr_p2o_tf import inference

_DATASET = flags.DEFINE_enum(
    "dataset", None, dataset_profiles.NAMES,
    "Joint layout and evaluation intrinsics.")
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
_MODEL_DIR = flags.DEFINE_string(
    "model_dir", None, "Model mode: the trainer's model directory, a .keras "
    "file, or an exported SavedModel or ONNX export.")
_MODEL = flags.DEFINE_string(
    "model", None, "Model mode, a training run: best or last (the run's "
    "best.keras / last.keras); default: best.keras if a validation split "
    "chose it, else the final last.keras.")
_RUNTIME = flags.DEFINE_enum(
    "runtime", None, inference.RUNTIMES,
    "Model mode, an exported --model_dir: what runs it (default: tensorflow "
    "for a SavedModel, onnxruntime for ONNX graphs).")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "Model mode: a split prepared by data_prep.")
_SUBJECTS = flags.DEFINE_list(
    "subjects", None, "Model mode, MSRA: the subjects to evaluate on.")
_PREDICTIONS_OUT = flags.DEFINE_string(
    "predictions_out", None, "Model mode: write the predicted uvd here.")
_LABELS_OUT = flags.DEFINE_string(
    "labels_out", None, "Model mode: write the true uvd here.")


def _model_report():
  """Model mode: predicts the split, writes the text files, returns a report."""
  from jgr_p2o_tf import metrics  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import records_manifest  # pylint: disable=g-import-not-at-top
  from jgr_p2o_tf import run_dir  # pylint: disable=g-import-not-at-top
  path = _MODEL_DIR.value
  manifest = records_manifest.read_manifest(_DATA_DIR.value)
  if inference.export_format(path):
    predictor = inference.Predictor(path, _RUNTIME.value)
    evaluation.check_agreement(_DATASET.value, _DATA_DIR.value, manifest,
                               predictor.metadata, path)
    model = inference.CropModel(predictor)
  else:
    if os.path.isdir(path):
      path = run_dir.resolve_model_path(path, _MODEL.value)
    elif not os.path.exists(path):
      raise FileNotFoundError(f"--model_dir={path}: no such .keras file, "
                              "training run or export")
    evaluation.check_agreement(_DATASET.value, _DATA_DIR.value, manifest,
                               run_dir.read_model_config(path), path)
    run_dir.check_not_chosen_on(path, _DATA_DIR.value, _SUBJECTS.value)
    model = run_dir.load_keras_model(path)
  records_manifest.verify_shards(_DATA_DIR.value, manifest)
  predictions = evaluation.predict_records(model, _DATA_DIR.value,
                                           subjects=_SUBJECTS.value)
  if _PREDICTIONS_OUT.value:
    metrics.write_uvd_file(_PREDICTIONS_OUT.value, predictions["pred_uvd"])
  if _LABELS_OUT.value:
    metrics.write_uvd_file(_LABELS_OUT.value, predictions["gt_uvd"])
  name = (_NAMES.value or ["JGR-P2O (ours)"])[0]
  return evaluation.evaluate_predictions(
      predictions, _DATASET.value, manifest["skeleton"], name,
      model_path=os.path.abspath(path),
      records_dir=os.path.abspath(_DATA_DIR.value),
      predictions_path=_PREDICTIONS_OUT.value,
      labels_path=_LABELS_OUT.value)


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  model_mode = bool(_MODEL_DIR.value or _DATA_DIR.value)
  file_mode = bool(_LABELS.value or _PREDICTIONS.value)
  if not _DATASET.value:
    raise ValueError("--dataset is required")
  if not (model_mode or file_mode):
    raise ValueError("say what to evaluate: a model (--model_dir and "
                     "--data_dir) or prediction files (--predictions and "
                     "--labels)")
  required = ((_MODEL_DIR, _DATA_DIR) if model_mode else
              (_LABELS, _PREDICTIONS))
  for flag in required:
    if not flag.value:
      mode = "model mode" if model_mode else "file mode"
      raise ValueError(f"--{flag.name} is required in {mode}")
  if model_mode:
    report = _model_report()
  else:
    report = evaluation.evaluate_prediction_files(
        _DATASET.value, _LABELS.value, _PREDICTIONS.value, _NAMES.value)
  print(evaluation.format_table(report))
  if _OUTPUT_JSON.value:
    evaluation.write_report_json(report, _OUTPUT_JSON.value)
  if _PLOT.value:
    evaluation.save_report_plot(report, _PLOT.value)


def run():
  cli.run(main)


if __name__ == "__main__":
  run()

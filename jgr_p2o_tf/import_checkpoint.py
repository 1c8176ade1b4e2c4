r"""Imports one of the authors' released TF1 checkpoints as a model directory.

  git clone https://github.com/fanglinpu/JGR-P2O
  python -m jgr_p2o_tf.import_checkpoint --dataset=nyu --model_dir=runs/nyu_authors \
      --checkpoint=JGR-P2O/checkpoint/NYU/dense_offset_graph_A/3D_Detection.model-58

TensorFlow 2 alone reads the checkpoint; the model directory it writes
(``last.keras`` in the authors' coordinate convention, ``config.json``) is
what ``evaluate``, ``export`` and the notebook take. See
``jgr_p2o_tf.authors_checkpoint``.
"""

from absl import flags

from jgr_p2o_tf import authors_checkpoint
from jgr_p2o_tf import cli

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "The checkpoint's prefix (.../3D_Detection.model-58, "
    "with its .index and .data-00000-of-00001 files) or its folder.")
_DATASET = flags.DEFINE_enum(
    "dataset", None, authors_checkpoint.AUTHORS_DATASETS,
    "The dataset the checkpoint was trained on: its joints and test cube.")
_MODEL_DIR = flags.DEFINE_string("model_dir", None,
                                 "The model directory to write.")
_OVERWRITE = flags.DEFINE_boolean(
    "overwrite", False, "Replace a model directory imported before.")

flags.mark_flags_as_required(["checkpoint", "dataset", "model_dir"])


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  report = authors_checkpoint.import_checkpoint(
      _CHECKPOINT.value, _DATASET.value, _MODEL_DIR.value,
      overwrite=_OVERWRITE.value)
  print(f"imported {report.checkpoint} ({len(report.assigned)} variables) "
        f"to {report.model_dir}: {report.dataset}, cube "
        f"{report.config['cube_mm'][0]:g} mm, authors' coordinate convention")
  for name, reason in report.skipped.items():
    print(f"  skipped {name}: {reason}")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()

"""Prepares one dataset split as TFRecord shards of hand crops.

  python -m data_prep --dataset=icvl --data_dir=/data/icvl --split=train \\
      --out_dir=/data/tfrecords/icvl_train [--centres=computed] [--workers=8]

(``jgr-p2o-prepare`` and ``python -m jgr_p2o_tf.prepare`` are the same
command; ``jgr_p2o_tf.data_preparation`` is the library behind it.)

MSRA (split "all") is written per subject; choose subjects with --subjects.
The authors' setup: their crop (--crop=authors), their cubes
(--cube_mm=authors_train for training splits, which draws each frame's cube
from the edges their code trains with; --cube_mm=authors_test for test
splits) and V2V-PoseNet's centre files (--centres=FILE --v2v_centres).
A bad frame stops the run with one line naming the file and frame (finished
shards are kept; rerun to resume), or is skipped with --skip_bad.
"""

import dataclasses
import os

from absl import flags

from jgr_p2o_tf import cli
from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import records_manifest

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", None, dataset_profiles.NAMES,
                  "Which raw dataset.")
flags.DEFINE_string("data_dir", None, "The raw dataset's root folder.")
flags.DEFINE_string("split", None,
                    "train or test (NYU, ICVL), all (MSRA), or the synthetic "
                    "split's folder name.")
flags.DEFINE_string("out_dir", None,
                    "Where the shards and manifest.json go (one split).")
flags.DEFINE_string("centres", "computed",
                    "Hand centres: computed (from the depth), ground_truth "
                    "(from the labels, for synthetic data) or a centre file, "
                    "one 'x y z' or 'invalid' line per frame.")
flags.DEFINE_bool("v2v_centres", False,
                  "The --centres file is one of V2V-PoseNet's, in the "
                  "dataset's own axes.")
flags.DEFINE_list("cube_mm", None,
                  "Cube edge in mm, or three edges x,y,z; authors_train: each "
                  "frame's cube drawn from those the authors' code trains the "
                  "dataset with (NYU 250-300, MSRA 150-200 mm); "
                  "authors_test: their test cube (NYU, ICVL 250, MSRA 175 "
                  "mm); default the dataset's.")
flags.DEFINE_integer("cube_seed", 0,
                     "Seed of the per-frame cubes of --cube_mm=authors_train.")
flags.DEFINE_enum("crop", "project", geometry.CROP_METHODS,
                  "How a frame is cut: project (a continuous warp of the "
                  "cube; depths outside it +1) or authors (their code's "
                  "whole-pixel window resized by nearest neighbour; depths "
                  "nearer than the cube -1, farther or missing +1).")
flags.DEFINE_integer("num_shards", None,
                     "Shards of the split (of each subject for MSRA); default "
                     f"one per {records_manifest.FRAMES_PER_SHARD} frames.",
                     lower_bound=1)
flags.DEFINE_integer("workers", os.cpu_count(),
                     "Worker processes writing shards.", lower_bound=1)
flags.DEFINE_bool("skip_bad", False,
                  "Skip bad frames (listed in the manifest) instead of "
                  "stopping at the first.")
flags.DEFINE_list("subjects", None, "MSRA: the subjects to read (P0..P8).")
flags.DEFINE_bool("refiner_crops", False,
                  "Also write each frame's centre refiner crop, around its "
                  "computed centre moved at random (python -m "
                  "jgr_p2o_tf.train --task=centre trains on them).")
flags.DEFINE_enum("refiner_stage", "coarse",
                  list(records_manifest.REFINER_STAGES),
                  "Which refinement step's crops (their size, and the "
                  "defaults of the four flags below): "
                  "records_manifest.REFINER_STAGES.")
flags.DEFINE_float("refiner_jitter_mm", None,
                   "Standard deviation per axis of the random move of the "
                   "refiner crops' rough centres.", lower_bound=0.0)
flags.DEFINE_float("refiner_near_share", None,
                   "Share of refiner crops cut around the frame's own centre "
                   "moved at random instead.", lower_bound=0.0,
                   upper_bound=1.0)
flags.DEFINE_float("refiner_near_jitter_mm", None,
                   "Standard deviation per axis of those crops' random move.",
                   lower_bound=0.0)
flags.DEFINE_float("refiner_cube_factor", None,
                   "Edge of the refiner crops' cube over the pose cube's.",
                   lower_bound=0.5)
flags.mark_flags_as_required(["dataset", "data_dir", "split", "out_dir"])


def _cubes(profile):
  """(cube_mm, cube_choices_mm) that --cube_mm asks for."""
  if FLAGS.cube_mm in (["authors_train"], ["authors_test"]):
    if profile.authors_test_cube_mm is None:
      raise ValueError(f"--cube_mm={FLAGS.cube_mm[0]}: the authors' code has "
                       f"no cubes for {profile.name}")
    if FLAGS.cube_mm == ["authors_test"]:
      return profile.authors_test_cube_mm, None
    return None, profile.authors_train_cubes_mm
  if FLAGS.cube_mm:
    return cli.numbers(FLAGS["cube_mm"], (1, 3), positive=True), None
  return None, None


def _refiner_crops():
  """The RefinerCrops --refiner_crops asks for, or None."""
  if not FLAGS.refiner_crops:
    return None
  stage = records_manifest.REFINER_STAGES[FLAGS.refiner_stage]
  given = {field: FLAGS[f"refiner_{field}"].value
           for field in ("cube_factor", "jitter_mm", "near_share",
                         "near_jitter_mm")}
  return dataclasses.replace(
      stage, **{k: v for k, v in given.items() if v is not None})


def main(argv):
  if len(argv) > 1:
    raise ValueError(f"unexpected arguments {argv[1:]}")
  cube_mm, cube_choices_mm = _cubes(
      dataset_profiles.get_profile(FLAGS.dataset))
  reader_kwargs = {"subjects": FLAGS.subjects} if FLAGS.subjects else {}
  # Imported here: TensorFlow takes seconds, and --help needs none of it.
  from jgr_p2o_tf import data_preparation  # pylint: disable=g-import-not-at-top
  manifest = data_preparation.prepare(
      FLAGS.dataset, FLAGS.data_dir, FLAGS.split, FLAGS.out_dir,
      centres=FLAGS.centres, v2v_centres=FLAGS.v2v_centres, cube_mm=cube_mm,
      cube_choices_mm=cube_choices_mm, cube_seed=FLAGS.cube_seed,
      crop=FLAGS.crop,
      num_shards=FLAGS.num_shards, workers=FLAGS.workers,
      skip_bad=FLAGS.skip_bad, reader_kwargs=reader_kwargs,
      refiner_crops=_refiner_crops())
  counts = manifest["counts"]
  print(f"{FLAGS.out_dir}: {counts['written']} crops in "
        f"{len(manifest['shards'])} shards, {counts['skipped']} frames "
        "skipped")


def run():
  cli.run(main)


if __name__ == "__main__":
  run()

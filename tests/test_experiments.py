"""The flagfiles of experiments/: the authors' setup, and ours beside it."""

import glob
import os

import pytest
from absl import flags

from jgr_p2o_tf import train  # pylint: disable=unused-import  (its flags)
from jgr_p2o_tf import train_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(os.path.relpath(p, REPO) for p in glob.glob(
    os.path.join(REPO, "experiments", "*.cfg")))

# The authors' code (main_*.py, network/dense_offset_graph.py).
AUTHORS = {
    "batch_size": 32, "learning_rate_decay": 0.96, "warmup_steps": 100,
    "adam_beta1": 0.5, "weight_decay": 5e-5, "weight_decay_mode": "l2",
    "decay_batch_norm_scale": True, "loss_reduction": "sum",
    "clip_labels": True, "coordinate_convention": "authors",
    "num_stacks": 2, "num_features": 128, "augment": True,
    "augment_mode": "authors", "rotation_deg": 180.0, "scale_min": 0.9,
    "scale_max": 1.1, "scale_sigma": 0.05, "translation_mm": 10.0,
    "farthest_depth_to_background": True, "validation_fraction": 0.0}
LEARNING_RATES = {"nyu": 2e-4, "icvl": 1e-4, "msra": 1e-4}


def _settings(flagfile):
  """{flag: value} a flagfile sets, nested flagfiles expanded, last wins."""
  cwd = os.getcwd()
  os.chdir(REPO)  # flagfiles name each other from the repository root
  try:
    args = flags.FLAGS.read_flags_from_files([f"--flagfile={flagfile}"],
                                             force_gnu=True)
  finally:
    os.chdir(cwd)
  settings = {}
  for arg in args:
    name, _, value = arg[2:].partition("=")
    if not value and name.startswith("no") and name[2:] in flags.FLAGS:
      name, value = name[2:], "false"
    assert name in flags.FLAGS, f"{flagfile}: unknown flag --{name}"
    settings[name] = (flags.FLAGS[name].parser.parse(value) if value
                      else True)
  return settings


@pytest.mark.parametrize("flagfile", FLAGFILES)
def test_every_flag_is_trains(flagfile):
  _settings(flagfile)


@pytest.mark.parametrize("dataset", sorted(LEARNING_RATES))
def test_dataset_flagfiles_are_the_authors_setup_and_improved_ours(dataset):
  authors = _settings(f"experiments/{dataset}.cfg")
  assert authors["dataset"] == dataset
  assert authors["learning_rate"] == LEARNING_RATES[dataset]
  assert {k: authors[k] for k in AUTHORS} == AUTHORS
  ours = _settings(f"experiments/{dataset}_improved.cfg")
  assert ours["dataset"] == dataset
  # Ours: this project's defaults, and a validation split held out of the
  # training records.
  for name in AUTHORS:
    if name != "validation_fraction":
      assert ours.get(name, train_config.DEFAULTS[name]) == (
          train_config.DEFAULTS[name]), name
  assert ours["validation_fraction"] > 0


def test_table_flagfiles_change_one_thing_of_the_authors_nyu_setup():
  nyu = _settings("experiments/nyu.cfg")
  for flagfile in FLAGFILES:
    if os.path.basename(flagfile).startswith("table"):
      changed = {k: v for k, v in _settings(flagfile).items()
                 if nyu.get(k) != v}
      assert set(changed) <= {"graph", "head", "beta", "num_stacks"}, flagfile
      assert changed, flagfile

"""The frames a training run learns from, and the frames that choose its model.

A run trains on its training records (``TrainConfig.train_dir``), less MSRA's
test subject. It has a validation split only when asked for one:

  * ``validation_dir``: a prepared split of its own;
  * ``validation_fraction``: part of the training records held out, by whole
    subjects where the records have them (MSRA) and otherwise by whole shards
    at their end, i.e. one contiguous run of frames. Never by random frames:
    neighbouring frames of a sequence are near-duplicates, so frames drawn at
    random would validate on the training data.

Only then does the trainer keep ``best.keras``, the model with the lowest
error on the validation split, and record the split in ``best.json``
(``run_dir`` says which model commands use). The test split never chooses a
model: a validation split prepared from a dataset's test split (its
manifest's ``split`` is "test"), one holding MSRA's test subject and one that
shares frames with the training frames are refused.

Frames are told apart across prepared folders by where they come from: the
raw split (a manifest's dataset, split, data_dir and reader_kwargs) and their
index in its reader. The same frames prepared twice, say with two cubes, are
the same frames.
"""

import dataclasses
import itertools
import os

from jgr_p2o_tf import records_manifest

TEST_SPLIT = "test"


@dataclasses.dataclass(frozen=True)
class Selection:
  """Some shards of one prepared split.

  Attributes:
    records_dir: the prepared split's folder.
    shards: the chosen shards' file names, in frame order.
    crops: the crops they hold.
    source: where the frames come from: the manifest's dataset, split,
      data_dir and reader_kwargs.
    frames: the chosen shards' [start, stop) ranges of reader indices.
    subjects: their subjects, or None for a split without.
  """
  records_dir: str
  shards: tuple
  crops: int
  source: dict
  frames: tuple
  subjects: tuple = None

  def describe(self):
    """A JSON-able record of the selection (``best.json``'s "validation")."""
    return {"records_dir": os.path.abspath(self.records_dir),
            "shards": list(self.shards), "crops": self.crops,
            "source": self.source, "frames": [list(f) for f in self.frames],
            "subjects": None if self.subjects is None else list(self.subjects)}


def select(records_dir, manifest, entries):
  """The Selection of some of ``manifest``'s shard entries."""
  subjects = [e["subject"] for e in entries if e.get("subject") is not None]
  return Selection(
      records_dir=records_dir, shards=tuple(e["file"] for e in entries),
      crops=sum(e["written"] for e in entries), source=source_of(manifest),
      frames=tuple(tuple(e["frames"]) for e in entries),
      subjects=tuple(dict.fromkeys(subjects)) if subjects else None)


def source_of(manifest):
  """Where a prepared split's frames come from (see the module docstring)."""
  return {key: manifest.get(key)
          for key in ("dataset", "split", "data_dir", "reader_kwargs")}


def shared_frames(description, source, frames):
  """How many frames a ``Selection.describe()`` shares with other frames.

  Args:
    description: a Selection's ``describe()``.
    source: ``source_of`` the other frames' manifest.
    frames: their [start, stop) reader index ranges.
  """
  if description["source"] != source:
    return 0
  return sum(max(0, min(stop, b) - max(start, a))
             for start, stop in description["frames"] for a, b in frames)


def resolve(config):
  """(training, validation) Selections of a TrainConfig; validation or None.

  Raises:
    ValueError: naming the flag, for a validation split that is the test
      split, holds the test subject, shares frames with the training
      frames, or leaves no training frames; or both validation flags set.
    FileNotFoundError: a split is not prepared.
  """
  manifest = records_manifest.read_manifest(config.train_dir)
  entries = [e for e in manifest["shards"] if e["written"]]
  subjects = {e.get("subject") for e in entries} - {None}
  if config.test_subject:
    if config.test_subject not in subjects:
      raise ValueError(f"--test_subject={config.test_subject}: "
                       f"{config.train_dir} has subjects {sorted(subjects)}")
    entries = [e for e in entries if e["subject"] != config.test_subject]
  if config.validation_dir and config.validation_fraction:
    raise ValueError("--validation_dir and --validation_fraction: give one "
                     "validation split, not two")
  if config.validation_fraction:
    kept, held = _hold_out(entries, config.validation_fraction)
    return (select(config.train_dir, manifest, kept),
            select(config.train_dir, manifest, held))
  training = select(config.train_dir, manifest, entries)
  if not config.validation_dir:
    return training, None
  validation_manifest = records_manifest.read_manifest(config.validation_dir)
  validation = select(
      config.validation_dir, validation_manifest,
      [e for e in validation_manifest["shards"] if e["written"]])
  flag = f"--validation_dir={config.validation_dir}"
  if validation.source["split"] == TEST_SPLIT:
    raise ValueError(
        f"{flag} is the test split of {validation.source['dataset']}: the "
        f"test split must not choose the model it is scored on; hold out "
        f"training data with --validation_fraction")
  if config.test_subject and config.test_subject in (validation.subjects or ()):
    raise ValueError(f"{flag} holds the test subject {config.test_subject}")
  shared = shared_frames(validation.describe(), training.source,
                         training.frames)
  if shared:
    raise ValueError(f"{flag} shares {shared} frames with the training "
                     f"records {config.train_dir}")
  return training, validation


def _hold_out(entries, fraction):
  """(kept, held) shard entries: whole units from the end, ≥ fraction."""
  if not 0 < fraction < 1:
    raise ValueError(f"--validation_fraction={fraction} must be in (0, 1)")
  if any(e.get("subject") is not None for e in entries):
    units = [list(group) for _, group in
             itertools.groupby(entries, key=lambda e: e["subject"])]
    kind = "subjects"
  else:
    units = [[e] for e in entries]
    kind = "shards"
  total = sum(e["written"] for e in entries)
  held, count = [], 0
  while units and count < fraction * total:
    unit = units.pop()
    held[:0] = unit
    count += sum(e["written"] for e in unit)
  if not units:
    raise ValueError(
        f"--validation_fraction={fraction} leaves no training frames: the "
        f"records have too few {kind} to hold whole ones out (prepare them "
        f"with more shards, data_prep --num_shards)")
  return [e for unit in units for e in unit], held

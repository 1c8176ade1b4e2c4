"""The manifest of a prepared split: ``manifest.json`` beside its shards.

Data preparation writes it after every finished shard; everything that reads
prepared records reads it here. It holds the settings the split was prepared
with (dataset, split, data_dir, reader_kwargs, centres, cube_mm, crop_size),
what the crops are (skeleton, num_joints, camera) and the progress:

  {"complete": bool,                 # every planned shard is written
   "counts": {"read", "written", "skipped", "skipped_by_kind": {kind: n}},
   "planned_shards": [{"file", "subject", "frames": [start, stop]}, ...],
   "shards": [{"file", "subject", "frames", "read", "written",
               "skipped", "bytes", "sha256"}, ...],  # the finished ones,
                                     # in frame order
   "skipped": [{"index", "frame_id", "shard", "kind", "reason"}, ...],
   "subjects": {subject: {"shards", "written", "skipped"}}}  # MSRA only
"""

import dataclasses
import hashlib
import itertools
import json
import os

MANIFEST_FILE = "manifest.json"

# Frames per shard when the shard count is not given: ~37 MB files, enough
# shards of a large split to interleave when reading.
FRAMES_PER_SHARD = 1000


@dataclasses.dataclass(frozen=True)
class RefinerCrops:
  """How data_prep --refiner_crops cuts a centre refiner's training crops.

  Each example's refiner crop is cut around its rough centre
  (``compute_centre``) moved by N(0, ``jitter_mm``) per axis or, for a share
  ``near_share`` of the frames, around its own centre moved by
  N(0, ``near_jitter_mm``), with a cube ``cube_factor`` times the pose cube,
  ``crop_size`` pixels square.

  Attributes:
    crop_size: S of the crops (a multiple of 4: the refiner votes at S/4).
    cube_factor: refiner cube edge / pose cube edge.
    jitter_mm: standard deviation per axis of a rough centre's random move.
    near_share: share of crops around the example's own centre instead.
    near_jitter_mm: standard deviation per axis of their random move.
  """
  crop_size: int
  cube_factor: float
  jitter_mm: float
  near_share: float
  near_jitter_mm: float


# The refinement steps' training crops (``centre_refiner``): "coarse" finds
# the hand from the rough centre, whose errors are mostly under ~50 mm but
# reach 100+ mm, in a cube 1.6× the pose cube (400 mm for 250), with half of
# its crops near the true centre (what its own second step would see);
# "fine" corrects what coarse leaves (~7 mm per axis) in the pose cube
# itself, where a 64×64 crop has 1.6× the resolution.
REFINER_STAGES = {
    "coarse": RefinerCrops(crop_size=64, cube_factor=1.6, jitter_mm=30.0,
                           near_share=0.5, near_jitter_mm=8.0),
    "fine": RefinerCrops(crop_size=64, cube_factor=1.0, jitter_mm=30.0,
                         near_share=1.0, near_jitter_mm=10.0),
}


def manifest_path(split_dir):
  return os.path.join(split_dir, MANIFEST_FILE)


def read_manifest(split_dir, *, require_complete=True):
  """The manifest of a prepared split, as a dict.

  Args:
    split_dir: the prepared split's folder.
    require_complete: refuse a split that data preparation has not
      finished; False reads whatever it wrote so far.

  Raises:
    FileNotFoundError: no manifest in ``split_dir``.
    ValueError: ``require_complete`` and the split is unfinished.
  """
  path = manifest_path(split_dir)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: run `python -m data_prep` "
                            f"to prepare {split_dir}")
  with open(path, encoding="utf-8") as f:
    manifest = json.load(f)
  if require_complete and not manifest.get("complete"):
    raise ValueError(f"{path}: data_prep has not finished this split "
                     f"(rerun it to write the missing shards)")
  return manifest


def file_digest(path):
  """(size in bytes, SHA-256 hex digest) of a file, as the manifest has them."""
  digest, size = hashlib.sha256(), 0
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
      size += len(block)
  return size, digest.hexdigest()


def shard_problem(split_dir, shard):
  """What is wrong with a finished shard's file, or None if it is whole.

  Missing, or another size or SHA-256 than the manifest's entry records
  (entries of earlier versions have neither: existence only).
  """
  path = os.path.join(split_dir, shard["file"])
  if not os.path.isfile(path):
    return "missing"
  if "bytes" not in shard:
    return None
  size, digest = file_digest(path)
  if size != shard["bytes"]:
    return f"{size} bytes where the manifest records {shard['bytes']}"
  if digest != shard["sha256"]:
    return "corrupt: its SHA-256 differs from the manifest's"
  return None


def verify_shards(split_dir, manifest=None):
  """Checks every shard of a split against its manifest (size, SHA-256).

  What training and evaluation do before reading a split, so that a bad
  shard stops them at the start rather than hours into an epoch.

  Raises:
    ValueError: naming the first bad shard and what is wrong with it.
  """
  if manifest is None:
    manifest = read_manifest(split_dir)
  for shard in manifest["shards"]:
    problem = shard_problem(split_dir, shard)
    if problem:
      raise ValueError(_bad_shard_message(split_dir, shard, problem))


def read_error(split_dir, error):
  """The ValueError for a TensorFlow error reading a split's records.

  TensorFlow names the offset, not the file: the shards are checked to
  name the bad one.

  Args:
    split_dir: the split read.
    error: the ``tf.errors.OpError`` (DataLossError, NotFoundError).
  """
  manifest = read_manifest(split_dir, require_complete=False)
  for shard in manifest["shards"]:
    problem = shard_problem(split_dir, shard)
    if problem:
      return ValueError(_bad_shard_message(split_dir, shard, problem))
  message = " ".join(error.message.split())
  return ValueError(f"{split_dir}: reading its records failed ({message})")


def _bad_shard_message(split_dir, shard, problem):
  return (f"{os.path.join(split_dir, shard['file'])}: {problem}; rerun "
          f"data_prep with the same flags to write this shard again")


def check_dataset(split_dir, manifest, dataset):
  """ValueError unless the split was prepared from ``dataset`` (--dataset)."""
  if manifest.get("dataset") != dataset:
    raise ValueError(
        f"--dataset={dataset} but the records in {split_dir} were prepared "
        f"from {manifest.get('dataset')} ({manifest_path(split_dir)})")


def write_manifest(split_dir, manifest, planned_shards, finished_shards):
  """Records the finished shards in ``manifest`` and writes it atomically.

  Args:
    split_dir: the prepared split's folder.
    manifest: the settings part of the manifest; updated in place.
    planned_shards: every shard of the split, in frame order: dicts
      ``{"file", "subject", "frames": [start, stop]}``.
    finished_shards: {file: entry} of the shards written so far, each entry
      as in "shards" plus ``skipped_frames``, the "skipped" entries of its
      frames.

  Returns:
    ``manifest``.
  """
  done = [finished_shards[s["file"]] for s in planned_shards
          if s["file"] in finished_shards]
  skipped = sorted((entry for s in done for entry in s["skipped_frames"]),
                   key=lambda entry: entry["index"])
  manifest.update({
      "complete": len(done) == len(planned_shards),
      "counts": {
          "read": sum(s["read"] for s in done),
          "written": sum(s["written"] for s in done),
          "skipped": len(skipped),
          "skipped_by_kind": {
              kind: sum(1 for e in skipped if e["kind"] == kind)
              for kind in sorted({e["kind"] for e in skipped})},
      },
      "planned_shards": list(planned_shards),
      "shards": [{k: v for k, v in s.items() if k != "skipped_frames"}
                 for s in done],
      "skipped": skipped,
  })
  if any(s["subject"] is not None for s in planned_shards):
    manifest["subjects"] = {}
    for subject, group in itertools.groupby(manifest["shards"],
                                            key=lambda s: s["subject"]):
      group = list(group)
      manifest["subjects"][subject] = {
          "shards": [s["file"] for s in group],
          "written": sum(s["written"] for s in group),
          "skipped": sum(s["skipped"] for s in group),
      }
  path = manifest_path(split_dir)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=1)
  os.replace(path + ".tmp", path)
  return manifest


def _select_shards(split_dir, manifest, subjects, exclude_subjects):
  """The manifest's finished shards of the chosen subjects, in frame order."""
  shards = manifest["shards"]
  if subjects is None and exclude_subjects is None:
    return shards
  known = sorted({s["subject"] for s in shards if s["subject"] is not None})
  if not known:
    raise ValueError(f"{split_dir}: {manifest['dataset']} has no subjects to "
                     f"filter by")
  wanted = set(known if subjects is None else subjects)
  wanted -= set(exclude_subjects or ())
  unknown = (set(subjects or ()) | set(exclude_subjects or ())) - set(known)
  if unknown:
    raise ValueError(f"{split_dir}: unknown subjects {sorted(unknown)}; the "
                     f"split has {known}")
  return [s for s in shards if s["subject"] in wanted]


def shard_paths(split_dir, manifest, subjects=None, exclude_subjects=None,
                shards=None):
  """Paths of the manifest's shards, in frame order, filtered by subject.

  Args:
    split_dir: the prepared split's folder.
    manifest: its manifest (``read_manifest``).
    subjects: keep only shards of these subjects (e.g. ``["P0", "P1"]``).
    exclude_subjects: drop shards of these subjects (leave-one-subject-out).
    shards: keep only these shard files (a split held out by whole shards,
      ``validation_split``).

  Returns:
    list of str paths.

  Raises:
    ValueError: a subject filter on a split without subjects, an unknown
      subject or shard, or nothing left to read.
  """
  selected = _select_shards(split_dir, manifest, subjects, exclude_subjects)
  if shards is not None:
    unknown = set(shards) - {s["file"] for s in manifest["shards"]}
    if unknown:
      raise ValueError(f"{split_dir}: no finished shards {sorted(unknown)}")
    selected = [s for s in selected if s["file"] in set(shards)]
  shards = selected
  # Shards whose frames were all skipped are empty files: nothing to read.
  paths = [os.path.join(split_dir, s["file"]) for s in shards if s["written"]]
  if not paths:
    raise ValueError(f"{split_dir}: no crops left to read after filtering")
  return paths

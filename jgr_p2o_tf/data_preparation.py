"""Converts a raw dataset split into sharded TFRecords of hand crops.

``prepare`` is the library function behind ``python -m data_prep``;
``prepare_synthetic_split`` renders synthetic frames and prepares them in one
call (tests, the notebook, benchmarks).

Each frame becomes one example (``jgr_p2o_tf.tfrecords``): the 96×96
normalized depth crop around the hand centre, the normalized joints, the
full-frame joints and the crop metadata that maps predictions back to the
frame. The frames are cut into shards, each a contiguous range of frames that
one worker writes to a temporary file of its own and renames to ``NAME`` once
complete, so a shard under its final name is always whole. The manifest
(``records_manifest``), rewritten after every shard, records the settings,
the finished shards (their record counts, sizes and SHA-256) and the skipped
frames; a rerun with the same settings keeps the finished shards and writes
only the others. Workers die with their parent, even a SIGKILLed one. MSRA
is sharded per subject (``P3-00000-of-00002.tfrecord``) for
leave-one-subject-out training.

Bad frames (unreadable files, an invalid centre, a centre outside the frame,
a crop without hand pixels, a crop the hand's joints are not in) stop the run
with a DatasetError naming the file and frame, or are skipped and listed in
the manifest with ``skip_bad``.

How a frame is cut (``_example``): its hand centre comes from a centre file
(V2V-PoseNet's, for the authors' setup), the labels (synthetic data) or the
depth; its crop is this project's continuous warp (``geometry.crop_depth``,
``crop="project"``) or the authors' whole-pixel window
(``geometry.crop_depth_authors``, ``crop="authors"``); its cube is the
split's, or drawn for the frame from ``cube_choices_mm``. The authors' code
crops each training frame with a cube drawn once, when it loads the dataset
(and keeps it in its cache for every epoch; ``dataset_profiles``'
``authors_train_cubes_mm``), so drawing it here, seeded by the frame's index,
is their setup as it is: no cropping at training time is needed. Each
example records its own cube, which training, evaluation and export read.

With ``refiner_crops`` each example also holds a centre refiner's input
(``centre_refiner``, ``tfrecords``; ``records_manifest.RefinerCrops``): the
depth's rough centre (``compute_centre``) moved by a random offset, N(0,
``jitter_mm``) per axis and seeded by the frame's index, so that the refiner
learns to correct errors larger than those of the rough centre alone, and
the crop around it with the refiner cube; or, for a share ``near_share`` of
the frames (drawn), around the example's own centre moved by N(0,
``near_jitter_mm``), the small errors a later refinement step starts from.
Its target is the example's centre, the one the pose crop is cut around. One
draw per frame, fixed at preparation like the authors' cubes: the records
stay readable by the pose pipeline, and the refiner needs no full frames at
training time.
"""

import concurrent.futures
import dataclasses
import glob
import itertools
import json
import math
import multiprocessing
import os
import queue as queue_lib
import tempfile
import threading

import numpy as np
import tensorflow as tf

from jgr_p2o_tf import dataset_profiles
from jgr_p2o_tf import geometry
from jgr_p2o_tf import progress as progress_lib
from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import tfrecords
from jgr_p2o_tf.datasets import centres as centres_lib
from jgr_p2o_tf.datasets.frame import DatasetError

# Why a frame was skipped; the manifest counts skipped frames by these.
READ_ERROR = "read_error"
INVALID_CENTRE = "invalid_centre"
NO_CENTRE = "no_centre"
CENTRE_OUTSIDE_FRAME = "centre_outside_frame"
EMPTY_CROP = "empty_crop"
HAND_OUTSIDE_CUBE = "hand_outside_cube"

# Settings a rerun must share with the run that wrote the finished shards.
_SETTINGS_KEYS = ("dataset", "split", "data_dir", "reader_kwargs", "centres",
                  "cube_mm", "crop_size", "crop", "cube_choices_mm",
                  "cube_seed", "refiner")
# Those settings as manifests written before they existed had them.
_SETTINGS_DEFAULTS = {"crop": "project", "cube_choices_mm": None,
                      "cube_seed": 0, "refiner": None}


class BadFrame(DatasetError):
  """A frame that cannot become a crop; ``kind`` is one of the reasons above."""

  def __init__(self, kind, reason, *, path, frame):
    super().__init__(reason, path=path, frame=frame)
    self.kind = kind

  def __reduce__(self):
    # Crosses process boundaries: rebuild from the constructor's arguments.
    return _rebuild_bad_frame, (self.kind, self.reason, self.path, self.frame)


def _rebuild_bad_frame(kind, reason, path, frame):
  return BadFrame(kind, reason, path=path, frame=frame)


@dataclasses.dataclass(frozen=True)
class _Shard:
  """One output file: frames [start, stop) of the reader."""
  file: str
  subject: object  # str or None
  start: int
  stop: int


@dataclasses.dataclass(frozen=True)
class _Job:
  """What a worker needs besides the reader; picklable for spawned workers."""
  out_dir: str
  data_dir: str
  centres: str  # "computed", "ground_truth" or "file"
  centre_file: object  # path or None
  file_centres: object  # tuple of (3,) arrays / None per frame, or None
  cube: object  # (3,) tuple, or None when drawn per frame
  cube_choices: tuple  # edges a frame's cube is drawn from, or ()
  cube_seed: int
  crop: str
  crop_size: int
  skip_bad: bool
  refiner: object  # the manifest's "refiner" dict, or None


def prepare(dataset, data_dir, split, out_dir, *, centres="computed",
            v2v_centres=False, cube_mm=None, cube_choices_mm=None,
            cube_seed=0, crop="project", crop_size=geometry.CROP_SIZE,
            num_shards=None, workers=1, skip_bad=False, reader_kwargs=None,
            refiner_crops=None, progress=True):
  """Writes the crops of one split as TFRecord shards plus manifest.json.

  Args:
    dataset: one of ``dataset_profiles.NAMES``.
    data_dir: the raw dataset's root folder.
    split: the reader's split ("train", "test", "all" for MSRA, ...).
    out_dir: where shards and manifest go; holds one split.
    centres: "computed" (from the depth, ``compute_centre``), "ground_truth"
      (from the labels, for synthetic training data) or the path of a centre
      file with one line per frame in reader order.
    v2v_centres: the centre file is one of V2V-PoseNet's, in the dataset's
      own axes (``centres.load_centre_file``).
    cube_mm: scalar or (3,) cube edges; default the dataset profile's.
    cube_choices_mm: instead of one cube, the edges each frame draws its
      cube from, uniformly (a cube of equal edges), e.g. the profile's
      ``authors_train_cubes_mm``.
    cube_seed: with ``cube_choices_mm``, the seed of the draws; frame i's
      draw depends only on (cube_seed, i).
    crop: "project" (``geometry.crop_depth``) or "authors"
      (``geometry.crop_depth_authors``).
    crop_size: S.
    num_shards: shards of the split, or of each subject for MSRA; default
      one per ``records_manifest.FRAMES_PER_SHARD`` frames.
    workers: processes writing shards in parallel; 1 writes in this process.
    skip_bad: skip bad frames (listed in the manifest) instead of stopping.
    reader_kwargs: extra arguments of the reader
      (``dataset_profiles.get_reader``; MSRA ``subjects``).
    refiner_crops: also write each frame's centre refiner crop, cut as a
      ``records_manifest.RefinerCrops`` or a stage name of
      ``records_manifest.REFINER_STAGES`` says (see the module docstring);
      None for none.
    progress: show a progress bar over frames.

  Returns:
    The manifest dict (also written to ``out_dir/manifest.json``).

  Raises:
    DatasetError: a bad frame (without ``skip_bad``) or bad annotation
      files; the shards finished before it are kept.
    ValueError: bad arguments, or ``out_dir`` holds shards written with
      other settings.
  """
  reader_kwargs = dict(reader_kwargs or {})
  reader = dataset_profiles.get_reader(dataset, data_dir, split,
                                       **reader_kwargs)
  if not len(reader):
    raise ValueError(f"{dataset} {split} in {data_dir} has no frames")
  if workers < 1:
    raise ValueError(f"workers must be at least 1, got {workers}")
  if crop not in geometry.CROP_METHODS:
    raise ValueError(f"crop must be one of {list(geometry.CROP_METHODS)}, got "
                     f"{crop!r}")
  if cube_choices_mm and cube_mm is not None:
    raise ValueError("give cube_mm or cube_choices_mm, not both")
  if cube_choices_mm and len(set(cube_choices_mm)) > 1:
    cube = None
    cube_choices = tuple(float(geometry.cube_vector(c)[0])
                         for c in cube_choices_mm)
  elif cube_choices_mm:  # a single choice is a fixed cube
    cube = geometry.cube_vector(cube_choices_mm[0])
    cube_choices = ()
  else:
    cube = geometry.cube_vector(
        dataset_profiles.get_profile(dataset).cube_mm if cube_mm is None
        else cube_mm)
    cube_choices = ()
  centre_file = file_centres = None
  if centres not in ("computed", "ground_truth"):
    centre_file = os.path.abspath(centres)
    file_centres = tuple(centres_lib.load_centre_file(
        centre_file, len(reader), v2v_dataset=dataset if v2v_centres else None))
  elif v2v_centres:
    raise ValueError("v2v_centres applies to a centre file only")
  shards = _plan_shards(reader, split, num_shards)
  refiner = None
  if refiner_crops is not None:
    settings = records_manifest.REFINER_STAGES.get(refiner_crops,
                                                   refiner_crops)
    if not isinstance(settings, records_manifest.RefinerCrops):
      raise ValueError(f"refiner_crops: {refiner_crops!r} is neither a "
                       f"RefinerCrops nor one of "
                       f"{sorted(records_manifest.REFINER_STAGES)}")
    refiner = {**{k: float(v) for k, v in
                  dataclasses.asdict(settings).items()},
               "crop_size": int(settings.crop_size), "seed": int(cube_seed)}
  manifest = {
      "complete": False,
      "dataset": dataset,
      "split": split,
      "data_dir": os.path.abspath(data_dir),
      "reader_kwargs": reader_kwargs,
      "centres": (centres if centre_file is None else
                  {"file": centre_file, "v2v": bool(v2v_centres)}),
      "cube_mm": None if cube is None else [float(c) for c in cube],
      "cube_choices_mm": list(cube_choices) or None,
      "cube_seed": int(cube_seed),
      "crop": crop,
      "crop_size": int(crop_size),
      "refiner": refiner,
      "skeleton": reader.skeleton.name,
      "num_joints": reader.skeleton.num_joints,
      "camera": dataclasses.asdict(reader.camera),
  }
  # A JSON round trip so that comparing with a previous manifest compares
  # like with like (lists, not tuples).
  manifest = json.loads(json.dumps(manifest))
  os.makedirs(out_dir, exist_ok=True)
  finished = _finished_shards(out_dir, manifest, shards)
  for leftover in glob.glob(os.path.join(glob.escape(out_dir),
                                         "*.tfrecord*.tmp")):
    os.remove(leftover)
  job = _Job(out_dir=os.fspath(out_dir), data_dir=os.fspath(data_dir),
             centres="file" if centre_file else centres,
             centre_file=centre_file, file_centres=file_centres,
             cube=None if cube is None else tuple(float(c) for c in cube),
             cube_choices=cube_choices, cube_seed=int(cube_seed), crop=crop,
             crop_size=int(crop_size), skip_bad=skip_bad,
             refiner=refiner)
  todo = [s for s in shards if s.file not in finished]
  planned = [_shard_entry(s) for s in shards]

  def on_shard(result):
    finished[result["file"]] = result
    records_manifest.write_manifest(out_dir, manifest, planned, finished)

  records_manifest.write_manifest(out_dir, manifest, planned, finished)
  done_frames = sum(s.stop - s.start for s in shards if s.file in finished)
  with progress_lib.progress(len(reader), f"{dataset} {split}", "frame",
                             initial=done_frames, disable=not progress) as bar:
    if workers == 1 or len(todo) <= 1:
      for shard in todo:
        on_shard(_write_shard(reader, job, shard, bar.update))
    else:
      _run_workers(reader, job, todo, workers, bar.update, on_shard)
  return records_manifest.write_manifest(out_dir, manifest, planned, finished)


def _umask():
  """The process's umask, read without changing it (Linux), else 0o022."""
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("Umask:"):
          return int(line.split()[1], 8)
  except OSError:
    pass
  return 0o022


def prepare_synthetic_split(work_dir, split, num_frames, seed, *,
                            layout="icvl", camera="icvl",
                            centres="ground_truth", workers=1,
                            num_shards=None):
  """Renders synthetic frames and prepares them; returns the records' folder.

  The raw frames go to ``{work_dir}/raw/{split}`` (``synthetic.generate``)
  and the records to ``{work_dir}/records/{split}``. A split whose records
  are complete is reused as it is.

  Args:
    work_dir: the folder holding ``raw/`` and ``records/``.
    split: the split's folder name, e.g. "train".
    num_frames: frames to render.
    seed: the synthetic dataset's seed.
    layout: joint layout of the labels.
    camera: the dataset whose camera the generator imitates.
    centres: "ground_truth" (crops around the true hand centres) or
      "computed", as for ``prepare``.
    workers: processes rendering and preparing.
    num_shards: shards of the split, as for ``prepare``.
  """
  from jgr_p2o_tf.synthetic import writer  # pylint: disable=g-import-not-at-top
  raw = os.path.join(work_dir, "raw")
  records = os.path.join(work_dir, "records", split)
  try:
    records_manifest.read_manifest(records)
  except (FileNotFoundError, ValueError):
    writer.generate(os.path.join(raw, split), num_frames, seed, layout=layout,
                    camera=camera, workers=workers, progress=False)
    prepare("synthetic", raw, split, records, centres=centres,
            workers=workers, num_shards=num_shards, progress=False)
  return records


def _plan_shards(reader, split, num_shards):
  """Splits the frames into shards, per subject where the reader has them."""
  if num_shards is not None and num_shards < 1:
    raise ValueError(f"num_shards must be at least 1, got {num_shards}")
  runs = []  # (subject, start, stop)
  for subject, indices in itertools.groupby(range(len(reader)),
                                            key=reader.subject):
    indices = list(indices)
    runs.append((subject, indices[0], indices[-1] + 1))
  subjects = [subject for subject, _, _ in runs]
  if len(set(subjects)) != len(subjects):
    raise ValueError("the reader's frames of each subject must be contiguous "
                     f"to shard per subject; got runs of {subjects}")
  shards = []
  for subject, start, stop in runs:
    count = stop - start
    total = num_shards or math.ceil(count / records_manifest.FRAMES_PER_SHARD)
    total = min(total, count)  # no empty shards
    bounds = [start + count * k // total for k in range(total + 1)]
    prefix = split if subject is None else subject
    shards += [_Shard(f"{prefix}-{k:05d}-of-{total:05d}.tfrecord", subject,
                      bounds[k], bounds[k + 1]) for k in range(total)]
  return shards


def _shard_entry(shard):
  return {"file": shard.file, "subject": shard.subject,
          "frames": [shard.start, shard.stop]}


def _finished_shards(out_dir, manifest, shards):
  """Shards of a previous run to keep: {file: its manifest entry}.

  A shard is kept if the previous manifest lists it as written with the same
  settings and frames, and its file is whole (``shard_problem``). A file the
  manifest does not list (e.g. the run died between the rename and the
  manifest update) or that was damaged since is written again.
  """
  try:
    previous = records_manifest.read_manifest(out_dir, require_complete=False)
  except FileNotFoundError:
    return {}
  changed = [f"{k} {previous.get(k, _SETTINGS_DEFAULTS.get(k))!r}"
             for k in _SETTINGS_KEYS
             if previous.get(k, _SETTINGS_DEFAULTS.get(k)) != manifest[k]]
  planned = previous.get("planned_shards") or []
  if not changed and planned != [_shard_entry(s) for s in shards]:
    changed.append(f"num_shards giving {len(planned)} shards")
  if changed:
    raise ValueError(
        f"{out_dir} holds shards prepared with other settings "
        f"({', '.join(changed)}); choose another out_dir or delete it")
  kept = {}
  for entry in previous.get("shards", ()):
    if not records_manifest.shard_problem(out_dir, entry):
      kept[entry["file"]] = {**entry, "skipped_frames": [
          e for e in previous["skipped"] if e["shard"] == entry["file"]]}
  return kept


def _write_shard(reader, job, shard, report):
  """Writes one shard; returns its manifest entry.

  Args:
    reader: the dataset reader.
    job: the _Job.
    shard: the _Shard.
    report: called with 1 after every frame, for the progress bar.

  Raises:
    DatasetError: a bad frame, unless ``job.skip_bad``; no file is left
      under the shard's final name.
  """
  path = os.path.join(job.out_dir, shard.file)
  # A name of its own: a worker of a killed run that has not died yet never
  # writes into the file of this one.
  handle, tmp = tempfile.mkstemp(prefix=shard.file + ".", suffix=".tmp",
                                 dir=job.out_dir)
  os.close(handle)
  # The umask's mode, as the manifest's, not mkstemp's 0600.
  os.chmod(tmp, 0o666 & ~_umask())
  written, skipped = 0, []
  try:
    with tf.io.TFRecordWriter(tmp) as writer:
      for index in range(shard.start, shard.stop):
        try:
          writer.write(_example(reader, job, index))
          written += 1
        except DatasetError as e:
          if not job.skip_bad:
            raise
          skipped.append({"index": index, "frame_id": reader.frame_ids[index],
                          "shard": shard.file,
                          "kind": getattr(e, "kind", READ_ERROR),
                          "reason": str(e)})
        report(1)
    size, digest = records_manifest.file_digest(tmp)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return {**_shard_entry(shard), "read": shard.stop - shard.start,
          "written": written, "skipped": len(skipped), "bytes": size,
          "sha256": digest, "skipped_frames": skipped}


def frame_cube(job, index):
  """(3,) float32 cube edges of frame ``index``: the job's, or drawn for it."""
  if job.cube is not None:
    return np.asarray(job.cube, np.float32)
  edge = np.random.default_rng((job.cube_seed, index)).choice(job.cube_choices)
  return np.full(3, edge, np.float32)


def _example(reader, job, index):
  """The serialized example of frame ``index``; DatasetError if it is bad."""
  frame = reader.read(index)
  frame_id = frame.frame_id
  cube = frame_cube(job, index)
  if job.centres == "file":
    centre = job.file_centres[index]
    if centre is None:
      raise BadFrame(INVALID_CENTRE, f"line {index + 1} says 'invalid'",
                     path=job.centre_file, frame=frame_id)
  elif job.centres == "ground_truth":
    centre = centres_lib.ground_truth_centre(frame.joints_xyz)
  else:
    try:
      centre = centres_lib.compute_centre(frame.depth_mm, frame.camera,
                                          cube_mm=cube, frame_id=frame_id)
    except DatasetError as e:
      raise BadFrame(NO_CENTRE, e.reason, path=job.data_dir,
                     frame=frame_id) from None
  if not centres_lib.centre_in_frame(centre, frame.camera):
    where = "is behind the camera"
    if centre[2] > 0:
      u, v, _ = geometry.xyz_to_uvd(np.asarray(centre, np.float64),
                                    frame.camera)
      where = (f"projects to u={u:.1f}, v={v:.1f}, outside the "
               f"{frame.camera.width}×{frame.camera.height} frame")
    raise BadFrame(CENTRE_OUTSIDE_FRAME,
                   f"hand centre {np.round(centre, 1).tolist()} mm {where}",
                   path=job.centre_file or job.data_dir, frame=frame_id)
  cut = (geometry.crop_depth_authors if job.crop == "authors"
         else geometry.crop_depth)
  crop, affine = cut(frame.depth_mm, centre, cube, frame.camera, job.crop_size)
  if np.all(crop == 1.0):
    raise BadFrame(EMPTY_CROP,
                   f"no hand pixels in the {cube.tolist()} mm cube around "
                   f"the centre {np.round(centre, 1).tolist()} mm",
                   path=job.data_dir, frame=frame_id)
  _check_hand_in_cube(frame, centre, cube, job)
  # float64 so that the stored float32 UVZ maps back to the stored uvd to
  # well under 1e-3 px.
  joints_uvz = geometry.uvd_to_normalized(
      np.asarray(frame.joints_uvd, np.float64), affine.astype(np.float64),
      np.float64(centre[2]), cube.astype(np.float64), job.crop_size)
  return tfrecords.serialize_example(
      depth=crop, joints_uvz=joints_uvz, joints_xyz=frame.joints_xyz,
      joints_uvd=frame.joints_uvd, centre_xyz=centre, cube=cube,
      affine=affine, camera=frame.camera.intrinsics, frame_id=frame_id,
      refiner=None if job.refiner is None else _refiner_input(
          frame, centre, cube, job, index))


def _refiner_input(frame, centre, cube, job, index):
  """The refiner crop of a frame: around its rough or own centre, moved at
  random (see the module docstring)."""
  try:
    rough = centres_lib.compute_centre(frame.depth_mm, frame.camera,
                                       cube_mm=cube, frame_id=frame.frame_id)
  except DatasetError as e:
    raise BadFrame(NO_CENTRE, e.reason, path=job.data_dir,
                   frame=frame.frame_id) from None
  settings = job.refiner
  draws = np.random.default_rng((settings["seed"], index))
  # The rough centre is computed either way: a frame without one is skipped
  # whatever its draw.
  start, jitter_mm = rough, settings["jitter_mm"]
  if draws.random() < settings["near_share"]:
    start, jitter_mm = centre, settings["near_jitter_mm"]
  rough = (start + draws.normal(0.0, jitter_mm, 3)).astype(np.float32)
  refiner_cube = geometry.refiner_cube(cube, settings["cube_factor"])
  return {"depth": geometry.refiner_crop(
              frame.depth_mm, rough, refiner_cube, frame.camera,
              settings["crop_size"]),
          "rough_centre_xyz": rough, "cube": refiner_cube}


def _check_hand_in_cube(frame, centre, cube, job):
  """BadFrame unless the hand's own centre lies in the cube cropped.

  A computed (or file) centre on another object than the hand, a wall or
  an arm, gives a crop whose labels lie far outside it: not training data.
  The hand's own centre is its joints' (``ground_truth_centre``).
  """
  offset = centres_lib.ground_truth_centre(frame.joints_xyz) - centre
  if np.all(np.abs(offset) <= cube / 2):
    return
  raise BadFrame(
      HAND_OUTSIDE_CUBE,
      f"the hand's joints are centred {np.round(offset, 1).tolist()} mm from "
      f"the crop centre {np.round(centre, 1).tolist()} mm, outside the "
      f"{cube.tolist()} mm cube (the centre is on something else)",
      path=job.centre_file or job.data_dir, frame=frame.frame_id)


# Per worker process: the reader, the job and the progress queue, sent once
# when the process starts rather than with every shard.
_WORKER = {}


def _init_worker(reader, job, progress_queue):
  _WORKER.update(reader=reader, job=job, queue=progress_queue)
  threading.Thread(target=_exit_with_parent, daemon=True).start()


def _exit_with_parent():
  """Ends this worker when its parent dies, even by SIGKILL.

  Otherwise a worker of a killed run lives on, writing shards that no
  manifest lists.
  """
  multiprocessing.parent_process().join()
  os._exit(1)  # pylint: disable=protected-access


def _worker_write_shard(shard):
  return _write_shard(_WORKER["reader"], _WORKER["job"], shard,
                      _WORKER["queue"].put)


def _run_workers(reader, job, shards, workers, report, on_shard):
  """Writes shards in spawned worker processes.

  On the first bad frame the shards not yet started are cancelled; those in
  progress finish (they are valid work), then the error is raised.
  """
  # spawn: forking a process that has started TensorFlow's threads is unsafe.
  context = multiprocessing.get_context("spawn")
  progress_queue = context.Queue()
  error = None
  with concurrent.futures.ProcessPoolExecutor(
      min(workers, len(shards)), mp_context=context, initializer=_init_worker,
      initargs=(reader, job, progress_queue)) as pool:
    pending = {pool.submit(_worker_write_shard, shard) for shard in shards}
    while pending:
      done, pending = concurrent.futures.wait(
          pending, timeout=0.2, return_when=concurrent.futures.FIRST_COMPLETED)
      _drain(progress_queue, report)
      for future in done:
        if future.cancelled():
          continue
        try:
          on_shard(future.result())
        except DatasetError as e:
          if error is None:
            error = e
            for other in pending:
              other.cancel()
  _drain(progress_queue, report)
  if error is not None:
    raise error


def _drain(progress_queue, report):
  while True:
    try:
      report(progress_queue.get_nowait())
    except queue_lib.Empty:
      return

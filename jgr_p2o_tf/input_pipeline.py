"""tf.data input pipeline over the TFRecord shards that ``data_prep`` writes.

``make_dataset`` lists the shards of a prepared split from its manifest
(``records_manifest``), reads them (interleaved across shards when training),
shuffles serialized records, batches, parses whole batches at once and
prefetches. One iteration over the returned dataset is one epoch; the caller
repeats it (``for epoch ...: for batch in ds``) or calls ``.repeat()``.
Every element is a dict of tensors, see ``tfrecords.parse_example``.
"""

import tensorflow as tf

from jgr_p2o_tf import records_manifest
from jgr_p2o_tf import tfrecords

# Serialized crops are ~37 KB, so this buffer holds ~75 MB.
DEFAULT_SHUFFLE_BUFFER = 2048
# Shards read at once when training: enough to mix frames from distant parts
# of a sequence without opening every file of a large split.
_MAX_CYCLE_LENGTH = 16


def make_dataset(data_dir, *, batch_size, training, seed=None, subjects=None,
                 exclude_subjects=None, shards=None,
                 shuffle_buffer=DEFAULT_SHUFFLE_BUFFER, drop_remainder=None,
                 cache=False, parse=None):
  """A batched tf.data pipeline over one prepared split.

  Args:
    data_dir: folder with ``manifest.json`` and the shards.
    batch_size: B.
    training: shuffle shards and records (reshuffled every epoch). When
      False, records come in frame order.
    seed: makes the order reproducible: two datasets made with the same seed
      yield identical batches in identical order (each epoch of one dataset
      is still shuffled differently). None: random order, and parallel
      reading may reorder records for speed.
    subjects: keep only these subjects (MSRA).
    exclude_subjects: drop these subjects (MSRA, e.g. the test subject).
    shards: read only these shard files (``validation_split``).
    shuffle_buffer: records in the shuffle buffer when training.
    drop_remainder: drop the last incomplete batch; None means ``training``
      (a training step wants a fixed batch, evaluation wants every frame).
    cache: True caches serialized records in memory, a str caches them in
      that file, False reads the shards every epoch.
    parse: ``f(serialized batch, manifest) → element``; None parses the
      pose crop (``tfrecords.parse_example``).

  Returns:
    tf.data.Dataset of dicts: ``depth`` (B, S, S, 1), ``joints_uvz``,
    ``joints_xyz``, ``joints_uvd`` (B, J, 3), ``centre_xyz``, ``cube`` (B, 3),
    ``affine`` (B, 2, 3), ``camera`` (B, 4) float32 and ``frame_id`` (B,)
    string.
  """
  manifest = records_manifest.read_manifest(data_dir)
  paths = records_manifest.shard_paths(data_dir, manifest, subjects,
                                       exclude_subjects, shards)
  if drop_remainder is None:
    drop_remainder = training
  deterministic = seed is not None or not training
  if training:
    files = tf.data.Dataset.from_tensor_slices(paths).shuffle(
        len(paths), seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(paths), _MAX_CYCLE_LENGTH),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
  else:
    records = tf.data.TFRecordDataset(paths)
  if cache:
    records = records.cache("" if cache is True else cache)
  if training:
    records = records.shuffle(shuffle_buffer, seed=seed,
                              reshuffle_each_iteration=True)
  if parse is None:
    num_joints = manifest["num_joints"]
    crop_size = manifest["crop_size"]
    parse = lambda serialized, _: tfrecords.parse_example(
        serialized, num_joints, crop_size)
  # Without tf.data's autotuner: deleting an iterator waits for its model
  # thread to finish sleeping, and that sleep doubles up to 60 s (TF 2.21).
  # The training iterator of an epoch, and Keras fit's at its end, then held
  # the CPUs idle for up to a minute. AUTOTUNE then means tf.data's default
  # parallelism, and a prefetch buffer that grows while the consumer waits.
  options = tf.data.Options()
  options.autotune.enabled = False
  return records.batch(batch_size, drop_remainder=drop_remainder).map(
      lambda serialized: parse(serialized, manifest),
      num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=deterministic).prefetch(tf.data.AUTOTUNE).with_options(
          options)


def batches(dataset, data_dir):
  """Iterates ``dataset``, a pipeline over ``data_dir``'s records.

  A missing, truncated or corrupt shard, which TensorFlow reports as an
  error at an offset, becomes a ValueError naming the shard
  (``records_manifest.read_error``).
  """
  iterator = iter(dataset)
  while True:
    try:
      batch = next(iterator)
    except StopIteration:
      return
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as e:
      raise records_manifest.read_error(data_dir, e) from None
    yield batch

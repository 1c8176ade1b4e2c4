"""What every raw dataset reader returns, its errors and the code they share.

A reader gives random access to the frames of one split: ``len(reader)``,
``reader.frame_ids`` and ``reader.read(index) -> Frame``. Construction only
reads the annotation files, so a reader is cheap to build and to pickle, and
data preparation can shard the frame indices over worker processes.

Problems with the files raise ``DatasetError`` naming the file, the frame and
what was expected, so that data preparation can report or skip the frame.
"""

import dataclasses
import os
import zlib

import numpy as np

from jgr_p2o_tf import geometry

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclasses.dataclass
class Frame:
  """One annotated depth frame, in the project's conventions.

  Attributes:
    frame_id: identifies the frame within its dataset, e.g.
      ``"test/depth_1_0000001.png"`` or ``"P3/TIP/000012"``.
    depth_mm: (H, W) float32 depth in mm, 0 where there is no depth.
    joints_uvd: (J, 3) float32 joints in full-frame pixels and mm.
    joints_xyz: (J, 3) float32 joints in camera space, mm, z > 0.
    camera: the intrinsics relating the two.
  """
  frame_id: str
  depth_mm: np.ndarray
  joints_uvd: np.ndarray
  joints_xyz: np.ndarray
  camera: geometry.Camera


class DatasetError(ValueError):
  """A dataset file is missing or does not have the expected contents.

  Attributes:
    path: the offending file (str) or None.
    frame: the frame id or index concerned, or None.
    reason: the message without the file and frame.
  """

  def __init__(self, reason, *, path=None, frame=None):
    self.path = None if path is None else os.fspath(path)
    self.frame = frame
    self.reason = reason
    where = []
    if self.path is not None:
      where.append(self.path)
    if frame is not None:
      where.append(f"frame {frame}")
    super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class Reader:
  """Random access to the frames of one split of one dataset.

  Subclasses set ``frame_ids`` (list of str), ``skeleton`` and ``camera`` in
  their constructor and implement ``read``.
  """

  def __len__(self):
    return len(self.frame_ids)

  def read(self, index):
    """Returns the Frame at ``index`` (0 ≤ index < len(self))."""
    raise NotImplementedError

  def subject(self, index):
    """The subject who performed frame ``index``, or None if not recorded."""
    self.check_index(index)
    return None

  def check_index(self, index):
    """Returns ``index`` as an int, raising IndexError outside the split."""
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"frame index {index} outside [0, {len(self)}) of "
                       f"{type(self).__name__}")
    return index


def read_png(path, frame, *, dtype, channels, camera):
  """Decodes a PNG file and checks its type, channels and size.

  Args:
    path: the PNG file.
    frame: the frame id, for error messages.
    dtype: the pixel type the format promises (np.uint8 or np.uint16).
    channels: 1 for a single-channel image, else the channel count.
    camera: the image must be camera.height × camera.width.

  Returns:
    The image as OpenCV decodes it: (H, W) or (H, W, channels), BGR order.

  Raises:
    DatasetError: missing, unreadable, truncated, not a PNG, or of the wrong
      bit depth, channel count or size.
  """
  import cv2  # pylint: disable=g-import-not-at-top
  expected = (f"{np.dtype(dtype).itemsize * 8}-bit "
              f"{'single-channel' if channels == 1 else f'{channels}-channel'}"
              f" {camera.width}×{camera.height} PNG")
  try:
    data = np.fromfile(path, np.uint8)
  except FileNotFoundError:
    raise DatasetError(f"missing file, expected {expected}", path=path,
                       frame=frame) from None
  except OSError as e:
    raise DatasetError(f"cannot read ({e}), expected {expected}", path=path,
                       frame=frame) from None
  if data[:len(_PNG_SIGNATURE)].tobytes() != _PNG_SIGNATURE:
    raise DatasetError(f"not a PNG file ({data.size} bytes), expected "
                       f"{expected}", path=path, frame=frame)
  damage = _png_damage(data.tobytes())
  if damage:
    raise DatasetError(f"truncated or corrupt PNG ({damage}), expected "
                       f"{expected}", path=path, frame=frame)
  image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
  if image is None:
    raise DatasetError(f"truncated or corrupt PNG, expected {expected}",
                       path=path, frame=frame)
  got_channels = 1 if image.ndim == 2 else image.shape[2]
  if image.dtype != dtype or got_channels != channels:
    raise DatasetError(
        f"got {image.dtype.itemsize * 8}-bit {got_channels}-channel PNG, "
        f"expected {expected}", path=path, frame=frame)
  if image.shape[:2] != (camera.height, camera.width):
    raise DatasetError(
        f"got {image.shape[1]}×{image.shape[0]} PNG, expected {expected}",
        path=path, frame=frame)
  return image


def _png_damage(data):
  """What is wrong with a PNG's chunks (length, checksum, end), or None.

  Checked before decoding: libpng would print its complaint about a
  truncated or corrupt file on stderr, beside the one-line error.
  """
  offset = len(_PNG_SIGNATURE)
  while offset + 12 <= len(data):
    length = int.from_bytes(data[offset:offset + 4], "big")
    end = offset + 8 + length
    if end + 4 > len(data):
      break
    kind = data[offset + 4:offset + 8]
    if zlib.crc32(data[offset + 4:end]) != int.from_bytes(data[end:end + 4],
                                                          "big"):
      return f"chunk {kind.decode('latin-1')!r} at byte {offset} fails its CRC"
    if kind == b"IEND":
      return None
    offset = end + 4
  return f"ends at byte {len(data)} before its IEND chunk"


def read_uint16_depth_png(path, frame, camera):
  """(H, W) float32 depth in mm from a 16-bit single-channel PNG.

  The format of ICVL, of the synthetic data and of most depth cameras'
  tools; raises DatasetError as ``read_png`` does.
  """
  return read_png(path, frame, dtype=np.uint16, channels=1,
                  camera=camera).astype(np.float32)

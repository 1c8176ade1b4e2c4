"""Keeps TensorFlow's C++ start-up notices off the user's terminal.

TensorFlow's C++ logging honours ``TF_CPP_MIN_LOG_LEVEL``, which
``jgr_p2o_tf/__init__.py`` sets to 2 (warnings and information hidden)
unless the user set it. Importing TensorFlow 2.21 still prints

  WARNING: All log messages before absl::InitializeLog() is called are ...
  I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...

(twice, once per library that holds a copy of the notice), whatever the
variable says: the notice is logged while the libraries load, through absl's
C++ logging before anything reads the variable, and absl writes everything
logged before its initialisation to stderr. So the first import of
``tensorflow`` in a process that imported ``jgr_p2o_tf`` runs with file
descriptor 2 (which Python cannot filter) sent to a temporary file; what
landed there is then written to stderr less the absl lines below the level
the variable asks for and absl's "before InitializeLog" notice. Errors and
anything else printed during the import still reach stderr.
"""

import importlib.machinery
import os
import re
import sys
import tempfile

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "2"

# absl's C++ log line prefix: severity letter, MMDD, time (seconds since the
# epoch before absl's initialisation), thread, file:line; I, W, E, F are
# levels 0..3 of TF_CPP_MIN_LOG_LEVEL.
_ABSL_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]*\] ")
_SEVERITIES = b"IWEF"
_BEFORE_INIT = b"WARNING: All log messages before absl::InitializeLog()"


def _min_level():
  try:
    return int(os.environ.get(LEVEL_VARIABLE, "0"))
  except ValueError:
    return 0


def filter_log(text, min_level):
  """``text`` (bytes) less the absl C++ lines below ``min_level``.

  A line continuing a dropped line (not itself an absl line) is dropped
  with it, e.g. the second line of cpu_feature_guard's notice.
  """
  kept, dropping = [], False
  for line in text.splitlines(keepends=True):
    match = _ABSL_LINE.match(line)
    if match:
      dropping = _SEVERITIES.index(match.group(1)) < min_level
    elif line.startswith(_BEFORE_INIT):
      dropping = min_level > 0
    if not dropping:
      kept.append(line)
  return b"".join(kept)


def _exec_quietly(exec_module, module):
  """Runs ``exec_module(module)`` with fd 2 filtered through ``filter_log``."""
  min_level = _min_level()
  if min_level <= 0:
    return exec_module(module)
  sys.stderr.flush()
  saved = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    os.dup2(captured.fileno(), 2)
    try:
      return exec_module(module)
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      captured.seek(0)
      text = filter_log(captured.read(), min_level)
      if text:
        os.write(2, text)


class _TensorFlowImportFinder:
  """Finds ``tensorflow`` as usual, its loader running under _exec_quietly."""

  @classmethod
  def find_spec(cls, name, path=None, target=None):
    if name != "tensorflow":
      return None
    sys.meta_path.remove(cls)
    spec = importlib.machinery.PathFinder.find_spec(name, path, target)
    if spec is not None and hasattr(spec.loader, "exec_module"):
      exec_module = spec.loader.exec_module
      spec.loader.exec_module = lambda module: _exec_quietly(exec_module,
                                                             module)
    return spec


def install():
  """Sets the level's default and filters TensorFlow's first import."""
  os.environ.setdefault(LEVEL_VARIABLE, DEFAULT_LEVEL)
  if "tensorflow" not in sys.modules and (
      _TensorFlowImportFinder not in sys.meta_path):
    sys.meta_path.insert(0, _TensorFlowImportFinder)

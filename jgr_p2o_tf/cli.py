"""What every command-line entry point shares: one-line errors, saved flags.

Commands parse their flags in ``main`` and call library functions; a user
error (bad flag, missing file, malformed input) raised as ValueError,
FileNotFoundError or NotADirectoryError ends the command with one line on
stderr and exit status 2, never a traceback.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging

USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError)


def run(main):
  """``app.run(main)`` with user errors turned into one line and exit 2."""
  def guarded(argv):
    # TensorFlow logs every checkpoint write at INFO through absl.
    logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except USER_ERRORS as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(2)
  app.run(guarded)


def write_flags(directory, filename="flags.txt"):
  """Writes the project's resolved flags as a flagfile (``--flagfile=``).

  Flags that TensorFlow and absl define for themselves are left out.
  """
  os.makedirs(directory, exist_ok=True)
  lines = []
  for module, module_flags in flags.FLAGS.flags_by_module_dict().items():
    if "jgr_p2o_tf" in module or "data_prep" in module:
      lines += [f.serialize() for f in module_flags]
  path = os.path.join(directory, filename)
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    f.write("\n".join(line for line in lines if line) + "\n")
  os.replace(path + ".tmp", path)
  return path

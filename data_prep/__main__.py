"""``python -m data_prep``: the command of ``jgr_p2o_tf.prepare``."""

from jgr_p2o_tf import prepare

prepare.run()

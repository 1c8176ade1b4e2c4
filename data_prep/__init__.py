"""Data preparation: raw dataset splits → sharded TFRecords of hand crops.

``python -m data_prep`` (from the repository) runs the command
``jgr_p2o_tf.prepare``, installed as ``jgr-p2o-prepare``; the library is
``jgr_p2o_tf.data_preparation``.
"""

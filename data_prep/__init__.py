"""Data preparation: raw dataset splits → sharded TFRecords of hand crops.

``python -m data_prep`` is the command; ``data_prep.prepare.prepare`` the
library function behind it.
"""

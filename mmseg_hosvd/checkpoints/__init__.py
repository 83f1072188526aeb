"""Safe checkpoint loading (:mod:`.loading`) and the explicit opt-ins to
trust a checkpoint (:mod:`.trust`).

This package imports nothing: the start-up hook ``mmseg_hosvd_startup``
loads it, :mod:`.trust` and :mod:`.loading` from their files without the
``mmseg_hosvd`` package (see :mod:`mmseg_hosvd.compat`), and neither module
imports anything else from mmseg_hosvd.
"""

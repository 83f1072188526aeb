"""Exact ways to lower the whole-step peak memory: the frozen prefix,
unread outputs, input release, chunked loss, activation checkpointing, the
lean fine-tuned region; and :mod:`.describe`, which names the reductions of
a config.
"""

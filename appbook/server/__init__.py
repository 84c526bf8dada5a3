"""The Appbook engine: definitions, publications, records, events and files.

Nothing here imports tornado or jupyter_server, so kernels and workers use it directly.
"""

"""Every poolmgr option, grouped by section, each declared once.

The options live next to the code that reads them in spirit (one module per
section here, named after it), and ``poolmgr.opts.list_opts`` hands them all to
``oslo-config-generator`` and to ``poolmgr.bootstrap.prepare_service``.
"""

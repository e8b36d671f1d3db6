"""The model: the tree's own C executed (``ceval``) over the configuration space (``packing``),
the functions' roles, the paths from userspace entry points, the ``vpcheck model`` table.
"""

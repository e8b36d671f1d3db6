"""Sources: a tree, a patch series, a git range or an inbox thread, read into Snapshots of bytes.

Nothing here parses C. Submodules are imported where used, so GitPython is
loaded only by a command that reads git.
"""

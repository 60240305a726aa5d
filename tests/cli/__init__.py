"""Tests of the dfn4 command line (a package, so its module names do not clash with tests/)."""

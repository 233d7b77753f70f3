import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
# Lightning's CLI calls a jsonargparse API deprecated upstream; not ours to fix.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

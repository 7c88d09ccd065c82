"""The repository's own tools around the workflow: the real-data accuracy bench (`make accuracy`), the README's
generated blocks (`make docs`) and the viewer's size projection. They are not installed with `landcover`: run them
from the checkout (`python -m tools.accuracy`)."""

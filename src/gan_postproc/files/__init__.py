"""Files: atomic writing, checked loading, image files, checkpoints, classifier files."""

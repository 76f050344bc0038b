"""Small real models that ship with gan-postproc.

* :mod:`gan_postproc.models.toy2d`: the DOT paper's pretrained 2-D WGAN-GP
  generators and critics (``25gaussians``, ``swissroll``) and their real data.
* :mod:`gan_postproc.models.digits`: GANs, classifiers and a feature network
  trained on scikit-learn's 8x8 digits by ``benchmarks/train_digits.py``.

Every model loads from files inside the package; nothing is downloaded.
"""

"""The demo: OmniSQL serving the sandbox's synthetic org with four fixed principals.

It runs from a source checkout (``make demo``, the tests, the benchmarks) and is not part of the product's
wheel or image, so neither ships the sandbox's fake credentials. The only package that imports ``sandbox``."""

"""The ground every stage stands on: errors, reading and validating input files, run options,
manifests, atomic writing and the resumable chunk store.

Nothing here knows what a model is; every other sub-package may import from here, and this
package imports none of them.
"""

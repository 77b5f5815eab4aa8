"""KServe doors into the library: ``kserve.Model`` classes and a server on kserve's public API that binds the
address it is told (``caig.serving.server``)."""

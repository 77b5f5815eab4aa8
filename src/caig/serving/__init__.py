"""KServe doors into the library: ``kserve.Model`` classes and a loopback-bindable ``ModelServer``."""

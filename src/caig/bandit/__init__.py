"""The online creative selector: Thompson sampling with RM priors, its state stores, simulation and OPE."""

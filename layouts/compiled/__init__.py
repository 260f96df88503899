"""The compiled view: targets (TPU topologies described by libtpu with no TPU present, or the local
devices), ahead-of-time compilation of the zoo's steps, the collectives of the optimized program,
and timing on the local devices."""

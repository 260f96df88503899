"""The paper's analytical cost model, free of any benchmark cell: per-chip terms derived from a
partitioning's rules (`terms`), the calibrated or roofline combination of them (`calibration`), an
estimate of one phase of a workload on a chip and mesh (`estimator`), and the layout search.

    from layouts.cost import Workload, estimate_phase
"""

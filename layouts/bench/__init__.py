"""The benchmark: a cell (model × layouts × chips × workload) and its result rows from the three
sources, the matrix and its experiment files, `auto` layouts, the runner with its cache and output
folder, and the paper's published numbers beside the estimate."""

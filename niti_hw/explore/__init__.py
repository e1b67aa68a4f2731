"""Design-space exploration: `niti-hw explore SPACE.toml`.

A space file (`space`) names hardware axes, workloads, numerics to train, objectives and
constraints. The engine (`engine`) turns it into three kinds of task (`tasks`: cost estimates in
chunks, accuracy runs on the sim backend, synthesis of sizes the report lacks), runs them on Dask
and stores each finished point at once (`store`, keyed by a hash of its configuration and the
niti-hw version), so a study resumes where it stopped. `results` joins estimates, accuracy and
synthesis into one row per design point; `pareto` keeps the feasible non-dominated ones; `report`
draws them.
"""

"""Appendix: time every version of the prefix mean and of attention, on any device.

    python -m bench            # this machine: CUDA if there is a GPU, else CPU
    python -m bench --help     # every option
    python -m bench.gpu OUT    # on a GPU machine: the CUDA tests and the default sweep

For each dtype, each T (a power of two) and each method, the harness records the
median time of one forward call and the peak memory the call adds; a bandwidth
point times ``clone`` and the linear prefix means once more on an ``x`` larger
than the caches. Everything, with the machine, library versions, date, command
and a fingerprint of the code each method measured, goes to a JSON results file
that the appendix page renders at build time.

The modules, each depending only on those above it:

* ``schema``: the results format and its typed rows; ``validate``: its ``load()``
  (both standard library only);
* ``fingerprint``: what code a method measured (standard library);
* ``escape``, ``summary``: a results file as text and tables (standard library);
* ``plots``, ``report``: its plots and the appendix's sections (matplotlib, and the
  site's plot style from ``snippets.plotting``);
* ``methods``: the registry of what is timed, with inputs, bytes and FLOPs;
* ``measure``: one point's median time and CUDA peak memory;
* ``memory``: CPU peak memory in a worker process;
* ``environment``: facts about the machine and the run;
* ``runner``: the sweep; ``cli``: the command line; ``gpu``: the one-command GPU check.

This package imports nothing on import, so ``bench.validate`` and ``bench.summary``
check and print a results file where torch is not installed.
"""

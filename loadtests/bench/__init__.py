"""``make bench``: the gateway measured against its own baseline, in one run, on the simulated upstreams.

    overhead      what the gateway adds to a 1 KB request (wrk), sequential and at 64 clients
    utilisation   how busy it keeps a GPU fleet under twice its capacity, against random choice and
                  round robin (LiteLLM's default and a plain proxy), with and without a failing GPU
    streaming     the gateway's memory while streaming 50 MB and 10 x 20 MB, and to a slow client
    scale         CPU per request with 5,000 requests queued, and with 1,000 endpoints

Every figure is measured from the client side against a baseline taken in the same run (rounds
interleaved, warm-up discarded, median of rounds). The gateway runs pinned to CPU 0; upstreams and
load generators share CPU 1. ``report`` writes docs/benchmarks.md and its charts.
"""

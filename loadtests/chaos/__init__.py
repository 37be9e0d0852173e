"""``make chaos``: a soak run that proves nothing is lost while everything goes wrong.

A gateway process with the selfhosted plugin, three simulated GPU endpoints (and a fourth the
admin adds and removes), a simulated cloud, and many concurrent clients using the official openai
SDK with a realistic mix: text-to-image (JSON), image-to-image (multipart with a real PNG) and
motion transfer (cloud only). While they run:

    faults      a scheduler cycles every fault the simulated GPUs can inject (refused connections,
                hangs, slow headers, 5xx, 429, resets before and during the answer, truncated JSON,
                slow bodies, hanging / failing / flapping health probes) across the three GPUs
    operator    the admin changes the split, an endpoint's max_concurrency, drains and restores an
                endpoint, adds and deletes one, forces a probe — through the REST API with If-Match —
                and hand-edits gateway.yaml, once with a typo the gateway must refuse

At the end it checks the promise (``SoakResult.problems``): every request sent got exactly one
complete answer and none failed while the cloud was up; no endpoint ever had more requests in
flight than its max_concurrency, as counted by the endpoint itself; no token is held and nobody is
queued; tasks and upstream connections are back to their baseline and memory near it; gateway.yaml
is valid; the gateway logged no unexpected error.

    soak        running the stack, settling, measuring, checking
    traffic     the clients
    faults      the fault scheduler
    operator    the admin's edits
    report      the figures, printed and written into docs/reliability.md
"""

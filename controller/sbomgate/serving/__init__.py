"""The HTTPS server in front of the admission controller, one concern a module:

app.py        the FastAPI app: routes, review threads and deadlines, readiness
handlers.py   what /validate, /mutate and /validate-policy do with a body
body.py       request bodies: streamed with a cap and a deadline, parsed with a bound
responses.py  AdmissionReview answers and HTTP errors
metrics.py    Prometheus metrics
tls.py        the TLS context and its reload when the certificate files change
server.py     `serve`: uvicorn, worker processes, draining on SIGTERM
"""

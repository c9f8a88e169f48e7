"""The demo's application: a small Flask service that the real image runs
(`python3 /app/app.py`). It lists a shop's stock and takes orders, enough to be a real
program with real dependencies; sbomgate only ever reads its SBOM."""

from __future__ import annotations

import os

from flask import Flask, abort, jsonify, request

app = Flask(__name__)
STOCK = {"apple": 12, "pear": 7, "plum": 0}


@app.get("/healthz")
def healthz() -> tuple[str, int]:
    return "ok\n", 200


@app.get("/stock")
def stock() -> object:
    return jsonify(STOCK)


@app.post("/orders")
def order() -> object:
    body = request.get_json(silent=True) or {}
    item, count = body.get("item"), body.get("count", 1)
    if item not in STOCK or not isinstance(count, int) or count < 1:
        abort(400)
    if STOCK[item] < count:
        abort(409)
    STOCK[item] -= count
    return jsonify({"item": item, "left": STOCK[item]}), 201


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))

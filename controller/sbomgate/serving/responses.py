"""The two kinds of answer the server gives: an AdmissionReview, or an HTTP error."""

from __future__ import annotations

import orjson
from fastapi.responses import JSONResponse, Response

from sbomgate.review import AdmissionReviewResponse


def answer(review: AdmissionReviewResponse) -> Response:
    """An AdmissionReview (allowed or not, always a 200: the API server reads its verdict)."""
    return Response(orjson.dumps(review), media_type="application/json")


def error(status: int, message: str) -> Response:
    """A request the server could not take as a review; the API server counts any non-200 as
    a webhook failure (failurePolicy: Fail turns it into a refusal)."""
    return JSONResponse({"error": message}, status_code=status)

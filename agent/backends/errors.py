"""Errors a backend raises to end a turn it cannot complete.

Kept apart from claude.py so the loop and the CLI can catch them without importing the
Anthropic SDK.
"""

from __future__ import annotations


class BackendError(Exception):
    """The model API failed after its retries (rate limit, overload, server error, auth,
    context window). The message is one line, says what happened and what to do; the
    session so far is already saved, so the run can be resumed."""

    def __init__(self, message: str, *, kind: str = "api_error", retryable: bool = False):
        super().__init__(message)
        self.kind = kind  # auth | rate_limit | overloaded | server | connection | context_window | bad_request | api_error
        self.retryable = retryable  # worth resuming later without changing anything

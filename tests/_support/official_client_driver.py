"""Drive SoftwareOne's official client (``mpt-api-client``, Python >= 3.12) against a sandbox.

Run by ``tests/contracts/test_official_client.py`` under an interpreter that has the client::

    python official_client_driver.py '{"base_url": ..., "token": ..., "account_id": ..., ...}'

Each step calls the client as a user's code would and records what it gave: the model as a dict,
or the exception's class and the fields the client puts on it. One JSON object is printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from mpt_api_client import BearerTokenAuthentication, MPTClient
from mpt_api_client.exceptions import MPTAPIError, MPTHttpError


def _outcome(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        model = call()
    except MPTAPIError as error:
        return {
            "error": type(error).__name__,
            "status_code": error.status_code,
            "status": error.status,
            "title": error.title,
            "detail": error.detail,
            "trace_id": error.trace_id,
            "errors": error.errors,
            "text": str(error),
        }
    except MPTHttpError as error:
        return {"error": type(error).__name__, "status_code": error.status_code, "text": str(error)}
    return {"model": type(model).__name__, "body": model.to_dict()}


def main(config: dict[str, Any]) -> dict[str, Any]:
    def client(token: str) -> Any:
        authentication = BearerTokenAuthentication(token)
        mpt = MPTClient.from_config(authentication, config["base_url"], timeout=10.0)
        return mpt.accounts.accounts.users(config["account_id"])

    users = client(config["token"])
    ids = config["users"]
    steps: dict[str, Callable[[], Any]] = {
        "get_invited": lambda: users.get(ids["invited"]),
        "get_selected": lambda: users.get(ids["active"], select=["-audit", "-modules"]),
        "resend_invited": lambda: users.resend_invite(ids["invited"]),
        "resend_active": lambda: users.resend_invite(ids["active"]),
        "resend_expired": lambda: users.resend_invite(ids["expired"]),
        "send_new_expired": lambda: users.send_new_invite(ids["expired"]),
        "resend_renewed": lambda: users.resend_invite(ids["expired"]),
        "send_new_invited": lambda: users.send_new_invite(ids["invited"]),
        "get_unknown": lambda: users.get(ids["unknown"]),
        "resend_unknown": lambda: users.resend_invite(ids["unknown"]),
        "accept_invite": lambda: users.accept_invite(ids["invited"]),
        "bad_token": lambda: client(config["bad_token"]).resend_invite(ids["invited"]),
    }
    return {name: _outcome(step) for name, step in steps.items()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))

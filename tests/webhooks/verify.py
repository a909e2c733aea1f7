"""Verifies webhook messages with `standardwebhooks` (PyPI), an implementation independent of
Sportello's: `verify.py SECRET FILE`, FILE a JSON list of {"headers": {...}, "body": "..."}.
Prints the parsed payloads as a JSON list; exits non-zero when a message does not verify, or when
a tampered copy of one does.

The timestamp tolerance (5 minutes around this machine's clock) is replaced by parsing alone: the
test servers run on a clock shifted to a working morning, and the Rust test checks the timestamp
against the server's clock itself."""

import json
import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

Webhook._Webhook__verify_timestamp = lambda self, header: datetime.fromtimestamp(int(header), tz=timezone.utc)

secret, path = sys.argv[1], sys.argv[2]
hook = Webhook(secret)
messages = json.load(open(path, encoding="utf-8"))
payloads = []
for m in messages:
    try:
        payloads.append(hook.verify(m["body"].encode("utf-8"), m["headers"]))
    except WebhookVerificationError as e:
        sys.exit(f"not verified ({e}): {m['headers'].get('webhook-id')}")
    try:
        hook.verify((m["body"] + " ").encode("utf-8"), m["headers"])
    except WebhookVerificationError:
        pass
    else:
        sys.exit("a tampered body verified")
print(json.dumps(payloads))

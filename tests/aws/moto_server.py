"""moto's server with DynamoDB's writes to one item serialised, as in the real service.

moto checks a condition expression and then applies the write without a lock, and its
server handles requests on threads: two concurrent conditional writes of one item can
both pass their condition. DynamoDB never lets that happen, and the adapters'
compare-and-set relies on it, so the tests run moto with its writes made atomic.
Arguments are moto_server's (-H HOST -p PORT).
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_writes = threading.RLock()


def _serialised(write):
    @functools.wraps(write)
    def run(*args, **kwargs):
        with _writes:
            return write(*args, **kwargs)

    return run


for _name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, _name, _serialised(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    sys.exit(main())

"""Outbound-ESL peer on greenswitch (gevent): the screening job of bench/compare.sh.

    python greenswitch_peer.py HOST:PORT BLACKLIST.csv

Per call: `connect` (greenswitch), `myevents`, `linger 5`, one `multiset` of the five
variables waiting for its CHANNEL_EXECUTE_COMPLETE, and for a blocked caller
`respond 486 Busy Here`; then greenswitch's `exit` when the handler returns.
"""
from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402

import greenswitch  # noqa: E402
from greenswitch.esl import OutboundSessionHasGoneAway  # noqa: E402

from screen import decide, load  # noqa: E402

TABLE = {}


class Screen:
    def __init__(self, session):
        self.session = session

    def run(self):
        s = self.session
        s.myevents()
        s.linger(5)
        blocked, pairs = decide(TABLE, s.caller_id_number or "")
        arg = "^^|" + "|".join(f"callguard_{n.lower()}={v}" for n, v in pairs)
        s.call_command("multiset", arg, block=True, response_timeout=5)
        if blocked:
            try:
                s.call_command("respond", "486 Busy Here", block=True, response_timeout=5)
            except OutboundSessionHasGoneAway:
                pass  # respond 486 ends the channel: that is the rejection done


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    TABLE.update(load(sys.argv[2]))
    server = greenswitch.OutboundESLServer(
        bind_address=host, bind_port=int(port), application=Screen, max_connections=10000
    )
    print(f"greenswitch listening {host}:{port}", file=sys.stderr, flush=True)
    server.listen()


if __name__ == "__main__":
    main()

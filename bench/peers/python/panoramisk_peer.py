"""FastAGI peer on panoramisk (asyncio): the screening job of bench/compare.sh.

    python panoramisk_peer.py HOST:PORT BLACKLIST.csv

Per call: read the AGI environment (panoramisk), look the caller up, `EXEC MSet` of the five
variables, and for a blocked caller `EXEC Busy 5` + `EXEC Hangup 17`; each command waits for
its reply (panoramisk's send_command). panoramisk closes the socket when the handler returns.
"""
import asyncio
import sys

from panoramisk.fast_agi import Application

from screen import decide, load


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    table = load(sys.argv[2])

    async def screen(request):
        blocked, pairs = decide(table, request.headers.get("agi_callerid", ""))
        data = ",".join(f"CALLGUARD_{n}={v}" for n, v in pairs)
        await request.send_command(f'EXEC MSet "{data}"')
        if blocked:
            await request.send_command("EXEC Busy 5")
            await request.send_command("EXEC Hangup 17")

    async def serve():
        app = Application()
        # Routes are keyed by agi_network_script (the simulator's default script).
        app.add_route("callfilter?trunk=support", screen)
        server = await asyncio.start_server(app.handler, host, int(port), backlog=1024)
        print(f"panoramisk listening {host}:{port}", file=sys.stderr, flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()

"""A shared drawing board for `scalesocket --json --cache tagged:64`: Python 3 standard library only.

Run as `scalesocket --json --cache tagged:64 --api python3 -- -u board.py`. The board is a grid of cells;
each line on stdin is a JSON object from a page, stamped with "_from" by the server:

- {"t": "Paint", "x", "y", "c"} paints a cell (c is a colour index, 0 erases) and goes to everyone.
- {"t": "Clear"} empties the board.
- {"t": "Cursor", "x", "y"} is where someone points; passed on to everyone, never kept.

A late joiner gets the board from the server's replay cache, not from this script: every paint and, after
every SNAPSHOT_EVERY paints, the whole board are marked "_cache": true. The last 64 such lines therefore
always hold a whole board followed by every paint since, which replayed in order rebuild the picture.
The room's metadata ("_meta": true, served by --api) counts the people and the painted cells.
"""

import json
import sys

WIDTH, HEIGHT, COLOURS = 40, 25, 6
# A whole board at least every 32 cached lines, so the 64 lines the cache keeps always reach back to one.
SNAPSHOT_EVERY = 31


def send(message):
    print(json.dumps(message, separators=(",", ":")))


def main():
    cells = [0] * (WIDTH * HEIGHT)
    since_snapshot = 0
    people = set()

    def snapshot():
        send({"t": "Board", "w": WIDTH, "h": HEIGHT, "cells": "".join(map(str, cells)), "_cache": True})

    def meta():
        send({"_meta": True, "people": len(people), "painted": sum(1 for c in cells if c)})

    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        who, kind = msg.get("_from"), msg.get("t")
        if kind == "Join":
            people.add(who)
            # A page cannot know its own ID otherwise; it needs it to tell its own cursor from the others.
            send({"t": "Hello", "you": who, "_to": who})
            send({"t": "People", "count": len(people)})
            meta()
        elif kind == "Leave":
            people.discard(who)
            send({"t": "People", "count": len(people)})
            send({"t": "Gone", "_from": who})
            meta()
        elif kind == "Cursor":
            x, y = msg.get("x"), msg.get("y")
            if isinstance(x, (int, float)) and isinstance(y, (int, float)):
                send({"t": "Cursor", "_from": who, "x": x, "y": y})
        elif kind == "Paint":
            x, y, c = msg.get("x"), msg.get("y"), msg.get("c")
            if not all(isinstance(v, int) for v in (x, y, c)):
                continue
            if not (0 <= x < WIDTH and 0 <= y < HEIGHT and 0 <= c < COLOURS):
                continue
            if cells[y * WIDTH + x] == c:
                continue
            cells[y * WIDTH + x] = c
            send({"t": "Paint", "_from": who, "x": x, "y": y, "c": c, "_cache": True})
            since_snapshot += 1
            if since_snapshot >= SNAPSHOT_EVERY:
                snapshot()
                since_snapshot = 0
            meta()
        elif kind == "Clear":
            cells = [0] * (WIDTH * HEIGHT)
            snapshot()
            since_snapshot = 0
            meta()


if __name__ == "__main__":
    main()

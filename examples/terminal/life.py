"""Conway's Game of Life for everyone in a room to play with: a full-screen terminal program, nothing else.

Run under `scalesocket --pty --binary`: every client sees the same screen in xterm.js and every client's keys
reach this program. It is safe to expose because it does only this: it reads single keys and draws; it runs
no command and opens no file. Python 3 standard library only; it also runs in a terminal of your own.

Keys: space pause or resume, r random, c clear, arrows move the cursor, enter or x flips a cell,
+ and - change the speed.
"""

import os
import random
import select
import shutil
import sys
import termios
import time
import tty

KEYS_HELP = " space pause · r random · c clear · arrows move · enter flip · +/- speed"
ARROWS = {b"\x1b[A": (0, -1), b"\x1b[B": (0, 1), b"\x1b[C": (1, 0), b"\x1b[D": (-1, 0),
          b"\x1bOA": (0, -1), b"\x1bOB": (0, 1), b"\x1bOC": (1, 0), b"\x1bOD": (-1, 0)}
SPEEDS = [1, 2, 4, 8, 15]


class Life:
    def __init__(self, width, height):
        self.w, self.h = width, height
        self.generation = 0
        self.cells = set()
        self.randomize()

    def randomize(self):
        self.cells = {(x, y) for x in range(self.w) for y in range(self.h) if random.random() < 0.25}
        self.generation = 0

    def step(self):
        counts = {}
        for (x, y) in self.cells:
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    if dx or dy:
                        p = ((x + dx) % self.w, (y + dy) % self.h)
                        counts[p] = counts.get(p, 0) + 1
        self.cells = {p for p, n in counts.items() if n == 3 or (n == 2 and p in self.cells)}
        self.generation += 1


def frame(life, cursor, running, speed, cols):
    """The whole screen, drawn from the top-left corner: whoever joins late sees all of it at the next tick."""
    state = "running" if running else "paused"
    title = f" Game of Life · generation {life.generation} · {len(life.cells)} alive · {state} · {speed}/s "
    out = ["\x1b[H\x1b[1;37;44m", title[:cols].ljust(cols), "\x1b[0m"]
    out.append(f"\x1b[2;1H\x1b[2m┌{'─' * life.w}┐\x1b[0m")
    for y in range(life.h):
        out.append(f"\x1b[{y + 3};1H\x1b[2m│")
        style = "\x1b[2m"
        for x in range(life.w):
            alive = (x, y) in life.cells
            if (x, y) == cursor:
                want, char = "\x1b[0;1;33m", "█" if alive else "▒"
            else:
                want, char = ("\x1b[0;32m", "█") if alive else ("\x1b[0m", " ")
            if want != style:
                out.append(want)
                style = want
            out.append(char)
        out.append("\x1b[0;2m│\x1b[0m")
    out.append(f"\x1b[{life.h + 3};1H\x1b[2m└{'─' * life.w}┘\x1b[0m")
    out.append(f"\x1b[{life.h + 4};1H\x1b[36m{KEYS_HELP[:cols].ljust(cols)}\x1b[0m")
    return "".join(out).encode()


def main():
    cols, rows = shutil.get_terminal_size((80, 24))
    life = Life(max(cols - 2, 10), max(rows - 4, 5))
    cursor = (life.w // 2, life.h // 2)
    running, speed = True, 2
    saved = None
    if os.isatty(0):
        # Key by key, without echo. scalesocket's --pty already sets raw mode; a terminal of your own does not.
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    os.write(1, b"\x1b[?1049h\x1b[?25l\x1b[2J")
    try:
        next_tick = time.monotonic()
        while True:
            os.write(1, frame(life, cursor, running, SPEEDS[speed], cols))
            timeout = max(0.0, next_tick - time.monotonic()) if running else None
            ready, _, _ = select.select([0], [], [], timeout)
            if ready:
                try:
                    data = os.read(0, 64)
                except OSError:
                    data = b""  # a terminal whose other side has closed (EIO)
                if not data:
                    return  # the room is gone
                i = 0
                while i < len(data):
                    if data[i:i + 3] in ARROWS:
                        dx, dy = ARROWS[data[i:i + 3]]
                        cursor = ((cursor[0] + dx) % life.w, (cursor[1] + dy) % life.h)
                        i += 3
                        continue
                    key = chr(data[i])
                    i += 1
                    if key == " ":
                        running = not running
                        next_tick = time.monotonic()
                    elif key == "r":
                        life.randomize()
                    elif key == "c":
                        life.cells.clear()
                        life.generation = 0
                    elif key in "\r\nx":
                        life.cells ^= {cursor}
                    elif key == "+":
                        speed = min(speed + 1, len(SPEEDS) - 1)
                    elif key == "-":
                        speed = max(speed - 1, 0)
            elif running:
                life.step()
                next_tick = time.monotonic() + 1 / SPEEDS[speed]
    except KeyboardInterrupt:
        pass
    finally:
        try:
            os.write(1, b"\x1b[?25h\x1b[?1049l")
            if saved is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved)
        except OSError:
            pass  # nobody is left to see the terminal restored


if __name__ == "__main__":
    sys.exit(main())
